/**
 * A WebSocket client written by hand over node:net, for what a well-behaved client cannot do: stop
 * reading (pause), skip pongs, send invalid UTF-8 or oversized frames, and see the raw close code.
 */
import { type Socket, connect } from "node:net";
import { waitFor } from "./util.ts";

export interface RawFrame {
  opcode: number;
  payload: Buffer;
}

export interface RawSocket {
  sock: Socket;
  /** Frames parsed so far (text, binary, ping, close...). */
  frames: RawFrame[];
  /** Text frames so far, as strings. */
  texts(): string[];
  /** Close code of the server's close frame, if one arrived. */
  closeCode(): number | undefined;
  /** True once the TCP connection ended. */
  ended(): boolean;
  send(opcode: number, payload: Buffer | string): void;
  sendText(v: unknown): void;
  /** Bytes received after the handshake. */
  received(): number;
  pause(): void;
  resume(): void;
  destroy(): void;
}

export const OP = { text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

/** Opens `path` on 127.0.0.1:port with a hand-written upgrade; rejects unless the answer is 101. */
export async function rawWebSocket(port: number, path: string, headers: Record<string, string> = {}): Promise<RawSocket> {
  const sock = connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    sock.once("connect", resolve);
    sock.once("error", reject);
  });
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
  sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`);
  let buf: Buffer = Buffer.alloc(0);
  let upgraded = false;
  let ended = false;
  let refused: string | undefined;
  let bytes = 0;
  const frames: RawFrame[] = [];
  sock.on("close", () => (ended = true));
  sock.on("error", () => (ended = true));
  sock.on("data", (chunk: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    if (!upgraded) {
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = buf.subarray(0, end).toString("latin1");
      if (!head.startsWith("HTTP/1.1 101")) {
        refused = head.split("\r\n")[0];
        sock.destroy();
        return;
      }
      upgraded = true;
      buf = buf.subarray(end + 4);
    }
    bytes += chunk.length;
    for (;;) {
      const f = parseFrame(buf);
      if (!f) break;
      frames.push(f.frame);
      buf = buf.subarray(f.size);
    }
  });
  await waitFor(() => {
    if (refused) throw new Error(`upgrade of ${path} refused: ${refused}`);
    if (ended) throw new Error(`connection to ${path} ended during the upgrade`);
    return upgraded;
  }, 5_000, `upgrade of ${path}`);
  const send = (opcode: number, payload: Buffer | string) => sock.write(encodeFrame(opcode, typeof payload === "string" ? Buffer.from(payload) : payload));
  return {
    sock, frames,
    texts: () => frames.filter((f) => f.opcode === OP.text).map((f) => f.payload.toString("utf8")),
    closeCode: () => {
      const c = frames.find((f) => f.opcode === OP.close);
      return c && c.payload.length >= 2 ? c.payload.readUInt16BE(0) : undefined;
    },
    ended: () => ended,
    send,
    sendText: (v) => send(OP.text, typeof v === "string" ? v : JSON.stringify(v)),
    received: () => bytes,
    pause: () => sock.pause(),
    resume: () => sock.resume(),
    destroy: () => sock.destroy(),
  };
}

function parseFrame(b: Buffer): { frame: RawFrame; size: number } | undefined {
  if (b.length < 2) return undefined;
  let len = b[1]! & 0x7f;
  let off = 2;
  if (len === 126) {
    if (b.length < 4) return undefined;
    len = b.readUInt16BE(2);
    off = 4;
  } else if (len === 127) {
    if (b.length < 10) return undefined;
    len = Number(b.readBigUInt64BE(2));
    off = 10;
  }
  if (b.length < off + len) return undefined;
  return { frame: { opcode: b[0]! & 0x0f, payload: Buffer.from(b.subarray(off, off + len)) }, size: off + len };
}

/** A final, masked client frame (clients must mask, RFC 6455 5.3). */
export function encodeFrame(opcode: number, payload: Buffer): Buffer {
  const mask = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, 0x80 | len])
    : len < 65536 ? Buffer.from([0x80 | opcode, 0x80 | 126, len >> 8, len & 0xff])
    : Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | 127]), (() => { const l = Buffer.alloc(8); l.writeBigUInt64BE(BigInt(len)); return l; })()]);
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i++) body[i] = payload[i]! ^ mask[i & 3]!;
  return Buffer.concat([head, mask, body]);
}
