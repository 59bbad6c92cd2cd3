/** A WebSocket test client: frames are queued and awaited with next(), each wait bounded in time. */

export interface TestSocket {
  ws: WebSocket;
  /** The next text frame, parsed as JSON (or raw with nextRaw). Throws after timeoutMs. */
  next<T = any>(timeoutMs?: number): Promise<T>;
  nextRaw(timeoutMs?: number): Promise<string>;
  /** Frames until (and including) the first that matches. */
  until<T = any>(pred: (f: any) => boolean, timeoutMs?: number): Promise<T[]>;
  /** Resolves with the close event. */
  closed: Promise<CloseEvent>;
  send(v: unknown): void;
  close(): void;
  /** Frames received and not yet taken. */
  pending(): string[];
}

/** The DOM lib's constructor type hides Bun's options overload (headers, tls). */
const BunWebSocket = WebSocket as unknown as new (url: string, init?: Bun.WebSocketOptions) => WebSocket;

/** `init` is Bun's WebSocket options (headers, tls) for auth and TLS tests. */
export async function openSocket(url: string, timeoutMs = 5_000, init?: Bun.WebSocketOptions): Promise<TestSocket> {
  const ws = new BunWebSocket(url, init);
  const queue: string[] = [];
  const waiters: ((s: string) => void)[] = [];
  let closeEvent: CloseEvent | undefined;
  const closed = new Promise<CloseEvent>((resolve) => {
    ws.addEventListener("close", (e) => {
      closeEvent = e;
      resolve(e);
    });
  });
  ws.addEventListener("message", (e) => {
    const data = typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data as ArrayBuffer);
    const w = waiters.shift();
    if (w) w(data);
    else queue.push(data);
  });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`could not open ${url}`)), timeoutMs);
    ws.addEventListener("open", () => (clearTimeout(t), resolve()));
    ws.addEventListener("error", () => (clearTimeout(t), reject(new Error(`could not open ${url}`))));
  });
  const nextRaw = (ms = 5_000) =>
    new Promise<string>((resolve, reject) => {
      const q = queue.shift();
      if (q !== undefined) return resolve(q);
      if (closeEvent) return reject(new Error(`socket closed (${closeEvent.code}) while waiting for a frame`));
      const t = setTimeout(() => {
        const i = waiters.indexOf(got);
        if (i >= 0) waiters.splice(i, 1);
        reject(new Error(`no frame within ${ms} ms`));
      }, ms);
      const got = (s: string) => (clearTimeout(t), resolve(s));
      waiters.push(got);
    });
  const next = async (ms?: number) => JSON.parse(await nextRaw(ms));
  return {
    ws, next, nextRaw, closed,
    async until(pred, ms = 10_000) {
      const deadline = Date.now() + ms;
      const got: any[] = [];
      for (;;) {
        const f = await next(Math.max(1, deadline - Date.now()));
        got.push(f);
        if (pred(f)) return got;
      }
    },
    send: (v) => ws.send(typeof v === "string" ? v : JSON.stringify(v)),
    close: () => ws.close(),
    pending: () => [...queue],
  };
}
