/**
 * A bare Redis connection for the relay floor: writes RESP commands as given and hands each reply to a
 * callback. No client library, because the floor needs what clients do not allow: `CLIENT REPLY OFF/SKIP`
 * (no reply, so no wake-up to read one) and several commands in one write on a blocking connection.
 */
import { parseUnixUrl } from "../../lib/config.ts";

export type Reply = string | number | null | Reply[];

export interface RespConnection {
  /** Sends the commands in one write. */
  send(commands: (string | number)[][]): void;
  close(): void;
}

export function encode(commands: (string | number)[][]): string {
  let out = "";
  for (const args of commands) {
    out += `*${args.length}\r\n`;
    for (const a of args) {
      const s = String(a);
      out += `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
    }
  }
  return out;
}

/** Parses one reply at `at`; undefined when the buffer does not hold all of it yet. */
export function parseReply(buf: Buffer, at: number): [Reply, number] | undefined {
  const eol = buf.indexOf("\r\n", at);
  if (eol < 0) return undefined;
  const line = buf.toString("latin1", at + 1, eol);
  const next = eol + 2;
  switch (buf[at]) {
    case 0x2b: // +
      return [line, next];
    case 0x2d: // -
      throw new Error(`redis: ${line}`);
    case 0x3a: // :
      return [Number(line), next];
    case 0x24: { // $
      const len = Number(line);
      if (len < 0) return [null, next];
      if (buf.length < next + len + 2) return undefined;
      return [buf.toString("utf8", next, next + len), next + len + 2];
    }
    case 0x2a: { // *
      const n = Number(line);
      if (n < 0) return [null, next];
      const items: Reply[] = [];
      let pos = next;
      for (let i = 0; i < n; i++) {
        const r = parseReply(buf, pos);
        if (!r) return undefined;
        items.push(r[0]);
        pos = r[1];
      }
      return [items, pos];
    }
    default:
      throw new Error(`redis: unexpected reply byte ${buf[at]}`);
  }
}

/** Connects to REDIS_URL (redis://host:port or unix:///path). */
export async function connectResp(url: string, onReply: (r: Reply) => void): Promise<RespConnection> {
  let pending = Buffer.alloc(0);
  let unsent = Buffer.alloc(0); // what the kernel did not take yet: sent on drain, in order
  const flush = () => {
    const n = socket.write(unsent);
    unsent = n >= unsent.length ? Buffer.alloc(0) : unsent.subarray(Math.max(0, n));
  };
  const handlers = {
    drain: () => void (unsent.length && flush()),
    data(_s: unknown, chunk: Uint8Array) {
      pending = pending.length ? Buffer.concat([pending, chunk]) : Buffer.from(chunk);
      let at = 0;
      for (let r = parseReply(pending, at); r; r = parseReply(pending, at)) {
        at = r[1];
        onReply(r[0]);
      }
      pending = at === pending.length ? Buffer.alloc(0) : pending.subarray(at);
    },
  };
  const unix = parseUnixUrl(url);
  const u = unix ? undefined : new URL(url);
  const socket = unix
    ? await Bun.connect({ unix: unix.path, socket: handlers })
    : await Bun.connect({ hostname: u!.hostname, port: Number(u!.port || 6379), socket: handlers });
  socket.setNoDelay(true);
  return {
    send(commands) {
      const bytes = Buffer.from(encode(commands));
      if (unsent.length) return void (unsent = Buffer.concat([unsent, bytes]));
      const n = socket.write(bytes);
      if (n < bytes.length) unsent = bytes.subarray(Math.max(0, n));
    },
    close: () => socket.end(),
  };
}
