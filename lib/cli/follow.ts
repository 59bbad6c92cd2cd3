/**
 * Follows one task over /ws (PROTOCOL.md section 2) until its terminal event: submits it (or subscribes to
 * it), shows progress, and on a dropped connection reconnects and resubscribes with `after` = last seq, so
 * nothing is missed or shown twice. Used by `taskwire submit` and `taskwire status --wait`.
 */
import { CliError, type Connection, EXIT, authHeaders, request, unreachable } from "./common.ts";
import type { ProgressSink } from "./progress.ts";

export type Start =
  | { submit: { task: string; args: Record<string, unknown>; key?: string } }
  | { watch: { id: string } };

export interface FollowOptions {
  progress: ProgressSink;
  /** Resolve as soon as the task is accepted (submit --detach). */
  detach?: boolean;
  /** Called once with the task id. */
  onId?(id: string): void;
}

export interface Outcome {
  exit: number;
  id?: string;
  /** The terminal frame (result / failed / cancelled), when there was one. */
  frame?: Record<string, any>;
}

const REFUSAL_EXIT: Record<string, number> = {
  bad_json: EXIT.usage, bad_request: EXIT.usage, unknown_type: EXIT.usage, unknown_task: EXIT.usage,
  invalid_args: EXIT.usage, too_large: EXIT.usage, not_found: EXIT.notFound,
};

const HINT: Record<string, string> = {
  invalid_args: " (fix --args)",
  too_large: " (make --args smaller)",
  rate_limited: " (retry later)",
  limit_exceeded: " (retry later)",
  unavailable: " (the server cannot reach Redis; retry later)",
};

/** The error frame as one line, with its issues, for stderr. */
export function refusal(err: { code?: string; message?: string; issues?: { path?: unknown[]; message?: string }[] }): string {
  const message = err.message ?? "refused";
  const issues = (err.issues ?? [])
    .filter((i) => !message.includes(i.message ?? ""))
    .map((i) => `\n  ${(i.path ?? []).join(".") || "(args)"}: ${i.message ?? ""}`)
    .join("");
  return `${err.code ?? "error"}: ${message}${HINT[err.code ?? ""] ?? ""}${issues}`;
}

/** The DOM lib's constructor type hides Bun's options overload (headers). */
const BunWebSocket = WebSocket as unknown as new (url: string, init?: Bun.WebSocketOptions) => WebSocket;

async function openSocket(c: Connection): Promise<WebSocket> {
  const ws = new BunWebSocket(c.ws, { headers: authHeaders(c) });
  const opened = await new Promise<boolean>((resolve) => {
    const t = setTimeout(() => resolve(false), 10_000);
    ws.addEventListener("open", () => (clearTimeout(t), resolve(true)), { once: true });
    ws.addEventListener("close", () => (clearTimeout(t), resolve(false)), { once: true });
  });
  if (opened) return ws;
  ws.close();
  // The WebSocket API hides why an upgrade failed; one plain HTTP request tells unreachable from 401.
  const res = await request(c, "GET", "/ws", 5_000);
  throw unreachable(c, `WebSocket upgrade to ${c.ws} failed (a plain GET answers HTTP ${res.status})`);
}

const RETRIES = 8;

export async function follow(c: Connection, start: Start, opts: FollowOptions): Promise<Outcome> {
  const ref = `cli-${crypto.randomUUID().slice(0, 8)}`;
  let id = "watch" in start ? start.watch.id : undefined;
  let lastSeq = 0;
  let failures = 0; // consecutive failed connects
  let drops = 0; // connections lost before the end, bounded so a flapping server cannot keep us forever
  for (;;) {
    let ws: WebSocket;
    try {
      ws = await openSocket(c);
    } catch (err) {
      // Reconnect only to a server we already reached; a first failure is reported at once.
      const again = failures > 0 && failures < RETRIES && err instanceof CliError && !err.refused;
      if (!again) throw err;
      failures++;
      await Bun.sleep(Math.min(2_000, 100 * 2 ** failures));
      continue;
    }
    failures = 0;
    const result = await new Promise<Outcome | { closed: number }>((resolve) => {
      ws.addEventListener("close", (e) => resolve({ closed: e.code }));
      ws.addEventListener("message", (e) => {
        let f: Record<string, any>;
        try {
          f = JSON.parse(String(e.data));
        } catch {
          return; // not ours to judge; the server speaks JSON
        }
        if (f.type === "error") {
          if (f.ref !== ref && !(f.id !== undefined && f.id === id)) return;
          const code = String(f.error?.code ?? "");
          resolve({ exit: REFUSAL_EXIT[code] ?? EXIT.unreachable, id, frame: f });
          return;
        }
        if (f.type === "accepted" && f.ref === ref && id === undefined) {
          id = String(f.id);
          opts.onId?.(id);
          if (opts.detach) resolve({ exit: EXIT.ok, id });
          return;
        }
        if (f.id !== id || typeof f.seq !== "number" || f.seq <= lastSeq) return;
        lastSeq = f.seq;
        if (f.type === "progress") opts.progress.update(f.data);
        else if (f.type === "result") resolve({ exit: EXIT.ok, id, frame: f });
        else if (f.type === "failed" || f.type === "cancelled") resolve({ exit: EXIT.taskFailed, id, frame: f });
        else opts.progress.note(`task ${id}: ${f.type}${f.state ? ` ${f.state}` : ""}`);
      });
      if (id !== undefined) ws.send(JSON.stringify({ type: "subscribe", id, after: lastSeq }));
      else if ("submit" in start) ws.send(JSON.stringify({ type: "submit", ref, ...start.submit }));
    });
    if ("exit" in result) {
      ws.close(1000);
      return result;
    }
    if (++drops > RETRIES * 4) throw new CliError(EXIT.unreachable, `the connection to ${c.ws} dropped ${drops} times; giving up${id ? ` (task ${id} keeps running)` : ""}`);
    if (id === undefined) {
      if ("submit" in start && start.submit.key !== undefined) {
        failures = 1;
        await Bun.sleep(100);
        continue; // the key makes a resubmit safe
      }
      throw new CliError(EXIT.unreachable, `the connection closed (${result.closed}) before the server accepted the task, so it may or may not be queued; pass --key <k> to make a retry safe`);
    }
    failures = 1;
    opts.progress.note(`connection lost (${result.closed}); reconnecting to follow task ${id} after seq ${lastSeq}`);
    await Bun.sleep(100);
  }
}
