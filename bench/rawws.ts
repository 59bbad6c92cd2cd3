/**
 * A minimal WebSocket client (RFC 6455) over Bun.connect, for the connections workload: unlike the
 * built-in WebSocket it can pick its source address (`localAddress`), which is how one box opens more
 * sockets to one server port than the ~28k ephemeral ports of a single source address allow.
 */
import type { Socket } from "bun";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

export interface RawWs {
  send(text: string): void;
  close(): void;
  readonly closed: boolean;
}

export interface RawWsOptions {
  host: string;
  port: number;
  path: string;
  localAddress?: string;
  onText?(text: string): void;
  /** Called once when the socket ends, with the close code if the server sent one (1006 otherwise). */
  onClose?(code: number): void;
  timeoutMs?: number;
}

interface State {
  handshake: boolean;
  buf: Uint8Array;
  pending: Uint8Array[];
  closed: boolean;
  closeCode: number;
  fragments: Uint8Array[];
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function connectRaw(o: RawWsOptions): Promise<RawWs> {
  const keyBytes = crypto.getRandomValues(new Uint8Array(16));
  const key = Buffer.from(keyBytes).toString("base64");
  const expectAccept = new Bun.CryptoHasher("sha1").update(key + GUID).digest("base64");
  const st: State = { handshake: false, buf: new Uint8Array(0), pending: [], closed: false, closeCode: 1006, fragments: [] };
  let resolveOpen: (ws: RawWs) => void;
  let rejectOpen: (err: Error) => void;
  const opened = new Promise<RawWs>((res, rej) => ((resolveOpen = res), (rejectOpen = rej)));
  let sock: Socket<undefined> | undefined;

  const write = (bytes: Uint8Array) => {
    if (!sock || st.closed) return;
    if (st.pending.length > 0) return void st.pending.push(bytes);
    const n = sock.write(bytes);
    if (n < bytes.length) st.pending.push(bytes.subarray(Math.max(n, 0)));
  };
  const frame = (opcode: number, payload: Uint8Array) => {
    const len = payload.length;
    const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
    const out = new Uint8Array(head + 4 + len);
    out[0] = 0x80 | opcode;
    if (len < 126) out[1] = 0x80 | len;
    else if (len < 65536) {
      out[1] = 0x80 | 126;
      out[2] = len >> 8;
      out[3] = len & 0xff;
    } else {
      out[1] = 0x80 | 127;
      new DataView(out.buffer).setBigUint64(2, BigInt(len));
    }
    const mask = crypto.getRandomValues(new Uint8Array(4));
    out.set(mask, head);
    for (let i = 0; i < len; i++) out[head + 4 + i] = payload[i]! ^ mask[i & 3]!;
    write(out);
  };
  const finish = () => {
    if (st.closed) return;
    st.closed = true;
    o.onClose?.(st.closeCode);
  };
  const ws: RawWs = {
    send: (text) => frame(1, enc.encode(text)),
    close: () => {
      frame(8, new Uint8Array([0x03, 0xe8])); // 1000
      sock?.end();
    },
    get closed() {
      return st.closed;
    },
  };

  const onFrame = (fin: boolean, opcode: number, payload: Uint8Array) => {
    if (opcode === 9) return frame(10, payload); // ping -> pong, or the server's idle timeout closes us
    if (opcode === 10) return;
    if (opcode === 8) {
      st.closeCode = payload.length >= 2 ? (payload[0]! << 8) | payload[1]! : 1005;
      frame(8, payload.subarray(0, 2));
      sock?.end();
      return finish();
    }
    if (opcode === 1 || opcode === 2 || opcode === 0) {
      st.fragments.push(payload.slice());
      if (!fin) return;
      const whole = st.fragments.length === 1 ? st.fragments[0]! : Buffer.concat(st.fragments);
      st.fragments = [];
      o.onText?.(dec.decode(whole));
    }
  };

  const parse = () => {
    let b = st.buf;
    let off = 0;
    if (!st.handshake) {
      const end = Buffer.from(b).indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = dec.decode(b.subarray(0, end));
      if (!/^HTTP\/1\.1 101/.test(head) || !head.includes(expectAccept)) {
        rejectOpen(new Error(`upgrade refused: ${head.split("\r\n")[0]}`));
        sock?.end();
        return;
      }
      st.handshake = true;
      off = end + 4;
      resolveOpen(ws);
    }
    for (;;) {
      if (b.length - off < 2) break;
      const fin = (b[off]! & 0x80) !== 0;
      const opcode = b[off]! & 0x0f;
      let len = b[off + 1]! & 0x7f;
      let p = off + 2;
      if (len === 126) {
        if (b.length - p < 2) break;
        len = (b[p]! << 8) | b[p + 1]!;
        p += 2;
      } else if (len === 127) {
        if (b.length - p < 8) break;
        len = Number(new DataView(b.buffer, b.byteOffset + p, 8).getBigUint64(0));
        p += 8;
      }
      if (b.length - p < len) break;
      onFrame(fin, opcode, b.subarray(p, p + len));
      off = p + len;
    }
    st.buf = off === b.length ? new Uint8Array(0) : b.slice(off);
  };

  const timer = setTimeout(() => {
    if (!st.handshake) {
      rejectOpen(new Error(`no upgrade within ${o.timeoutMs ?? 10_000} ms`));
      sock?.end();
    }
  }, o.timeoutMs ?? 10_000);

  // `localAddress` is undocumented in bun-types but honoured by Bun.connect: the source address to bind.
  const options: Bun.TCPSocketConnectOptions<undefined> & { localAddress?: string } = {
    hostname: o.host,
    port: o.port,
    ...(o.localAddress ? { localAddress: o.localAddress } : {}),
    socket: {
      open(s) {
        sock = s;
        s.write(`GET ${o.path} HTTP/1.1\r\nHost: ${o.host}:${o.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      },
      data(_s, chunk) {
        st.buf = st.buf.length === 0 ? chunk : Buffer.concat([st.buf, chunk]);
        parse();
      },
      drain(s) {
        while (st.pending.length > 0) {
          const next = st.pending[0]!;
          const n = s.write(next);
          if (n < next.length) {
            st.pending[0] = next.subarray(Math.max(n, 0));
            return;
          }
          st.pending.shift();
        }
      },
      close() {
        clearTimeout(timer);
        if (!st.handshake) rejectOpen(new Error("connection closed before the upgrade"));
        finish();
      },
      error(_s, err) {
        if (!st.handshake) rejectOpen(err);
      },
    },
  };
  Bun.connect(options).catch((err: Error) => {
    clearTimeout(timer);
    rejectOpen(err);
  });
  return opened.finally(() => clearTimeout(timer));
}
