/**
 * One multiplexed /ws connection that outlives dropped sockets: submits, watches and cancels are kept as
 * state and replayed on every (re)connect, so a reconnect resubscribes each live task with `after` = the
 * last seq seen (nothing lost, nothing twice) and sends the submits made while disconnected.
 */
import { ConnectionClosedError, RequestRefusedError, type Issue, TaskwireError } from "./errors.ts";
import { TaskRun } from "./run.ts";
import type { ConnectOptions, ConnectionState, DefaultTasks, SubmitOptions, SubmitParams, TaskEvent, TaskRegistry, TaskResult } from "./types.ts";

const TASK_EVENTS = new Set(["progress", "queued", "result", "failed", "cancelled"]);
const TERMINAL = new Set(["result", "failed", "cancelled"]);
/** Errors after which a task's subscribe is worth retrying (a not_found is final). */
const TRANSIENT = new Set(["unavailable", "rate_limited", "limit_exceeded", "internal"]);

interface PendingSubmit {
  run: TaskRun<any>;
  frame: string;
  /** Sent on the current socket (so a 1009 close can be blamed on it). */
  sent: boolean;
}

type StateListener = (state: ConnectionState) => void;
type ErrorListener = (err: TaskwireError) => void;

/** Connects to a taskwire server; returns at once and connects (and reconnects) in the background. */
export function connect<T extends TaskRegistry = DefaultTasks>(url: string, opts: ConnectOptions = {}): Taskwire<T> {
  return new Taskwire<T>(url, opts);
}

export class Taskwire<T extends TaskRegistry = DefaultTasks> {
  /** The ws:// or wss:// URL of /ws (without the token). */
  readonly url: string;
  state: ConnectionState = "connecting";

  private readonly wsUrl: string;
  private readonly probeUrl: string;
  private readonly minDelay: number;
  private readonly maxDelay: number;
  private ws: WebSocket | undefined;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private refs = 0;
  private readonly keyPrefix = randomId();
  /** Submits not yet accepted, by ref. */
  private readonly pending = new Map<string, PendingSubmit>();
  /** Runs with a known id that have not ended, by task id. */
  private readonly live = new Map<string, Set<TaskRun<any>>>();
  private readonly stateListeners = new Set<StateListener>();
  private readonly errorListeners = new Set<ErrorListener>();

  /** @internal use connect(). */
  constructor(url: string, opts: ConnectOptions) {
    const base = typeof location === "object" && location?.href ? location.href : undefined;
    const u = new URL(url, base);
    if (u.protocol === "http:" || u.protocol === "https:") u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    if (u.protocol !== "ws:" && u.protocol !== "wss:") throw new TypeError(`url: ${JSON.stringify(url)} is not http(s):// or ws(s)://`);
    if (u.pathname === "/" || u.pathname === "") u.pathname = "/ws";
    u.search = "";
    u.hash = "";
    this.url = u.href;
    const token = opts.token ? `?token=${encodeURIComponent(opts.token)}` : "";
    this.wsUrl = u.href + token;
    const http = new URL(u.href);
    http.protocol = u.protocol === "wss:" ? "https:" : "http:";
    http.pathname = "/tasks/schema";
    this.probeUrl = http.href + token;
    this.minDelay = opts.minDelayMs ?? 200;
    this.maxDelay = opts.maxDelayMs ?? 10_000;
    this.open();
  }

  /**
   * Submits a task; the args are type-checked against its zod schema. Works while disconnected: the submit
   * is queued and sent on (re)connect. Each submit carries an idempotency key (yours, or a random one), so
   * re-sending it after a dropped connection can never run the task twice.
   */
  submit<N extends keyof T & string>(task: N, ...[args, opts]: SubmitParams<T, N>): TaskRun<TaskResult<T, N>> {
    const run = new TaskRun<TaskResult<T, N>>(task, (r) => this.sendCancel(r));
    if (this.state === "closed") {
      run.fail(new ConnectionClosedError());
      return run;
    }
    const ref = `r${++this.refs}`;
    const o = opts as SubmitOptions | undefined;
    const frame = JSON.stringify({ type: "submit", ref, task, args: args ?? {}, key: o?.key ?? `${this.keyPrefix}-${this.refs}`, ...(o?.options ? { options: o.options } : {}) });
    const p: PendingSubmit = { run, frame, sent: false };
    this.pending.set(ref, p);
    if (this.state === "open") this.sendSubmit(p);
    return run;
  }

  /** Follows a task submitted elsewhere (or earlier): replays its events after `after` (default: all), then live ones. */
  watch<R = unknown>(id: string, opts: { after?: number } = {}): TaskRun<R> {
    const run = new TaskRun<R>(undefined, (r) => this.sendCancel(r), id, opts.after ?? 0);
    if (this.state === "closed") {
      run.fail(new ConnectionClosedError());
      return run;
    }
    this.track(id, run);
    if (this.state === "open") this.send({ type: "subscribe", id, after: run.lastSeq });
    return run;
  }

  /** Resolves when a socket is open (now, or after the next (re)connect); rejects once closed. */
  ready(): Promise<void> {
    if (this.state === "open") return Promise.resolve();
    if (this.state === "closed") return Promise.reject(new ConnectionClosedError());
    return new Promise((resolve, reject) => {
      const off = this.on("state", (s) => {
        if (s === "open") (off(), resolve());
        else if (s === "closed") (off(), reject(new ConnectionClosedError()));
      });
    });
  }

  /** "state": connecting/open/reconnecting/closed. "error": a refusal no run could be blamed for, or an unauthorized connect (then the connection closes). */
  on(event: "state", fn: StateListener): () => void;
  on(event: "error", fn: ErrorListener): () => void;
  on(event: "state" | "error", fn: StateListener | ErrorListener): () => void {
    const set = (event === "state" ? this.stateListeners : this.errorListeners) as Set<typeof fn>;
    set.add(fn);
    return () => set.delete(fn);
  }

  /** Stops reconnecting and closes the socket; runs still live reject with ConnectionClosedError (their tasks keep running). Idempotent. */
  close(): void {
    this.shutdown(new ConnectionClosedError());
  }

  // --- socket ---

  private open(): void {
    let opened = false;
    const ws = new WebSocket(this.wsUrl);
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      opened = true;
      this.attempt = 0;
      this.setState("open");
      this.replay();
    };
    ws.onmessage = (e) => {
      if (this.ws === ws && typeof e.data === "string") this.receive(e.data);
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      if (this.state === "closed") return;
      if (e.code === 1009) this.refuseSent("too_large", "a submit was larger than the server's frame limit (MAX_PAYLOAD_BYTES)");
      for (const p of this.pending.values()) p.sent = false;
      this.setState("reconnecting");
      if (opened) this.schedule();
      else void this.probeThenSchedule();
    };
  }

  /** A socket that never opened may mean a wrong token: ask over HTTP, and stop for good on a 401. */
  private async probeThenSchedule(): Promise<void> {
    try {
      const res = await fetch(this.probeUrl, { method: "GET" });
      if (res.status === 401) {
        const err = new RequestRefusedError("unauthorized", "the server refused the token: pass connect(url, {token: TASKWIRE_TOKEN})");
        for (const fn of this.errorListeners) fn(err);
        return this.shutdown(err);
      }
    } catch {
      // server down or another origin without CORS: keep trying
    }
    if (this.state !== "closed") this.schedule();
  }

  private schedule(): void {
    const exp = Math.min(this.maxDelay, this.minDelay * 2 ** this.attempt++);
    const delay = exp / 2 + Math.random() * (exp / 2); // jitter: a restarted server is not hit by every client at once
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (this.state !== "closed") this.open();
    }, delay);
  }

  /** On every open: resend unaccepted submits, resubscribe live tasks after their last seq, repeat wanted cancels. */
  private replay(): void {
    for (const p of this.pending.values()) this.sendSubmit(p);
    for (const id of this.live.keys()) this.resubscribe(id);
  }

  private resubscribe(id: string): void {
    const runs = this.live.get(id);
    if (!runs || runs.size === 0 || this.state !== "open") return;
    let after = Infinity;
    for (const r of runs) after = Math.min(after, r.lastSeq);
    this.send({ type: "subscribe", id, after });
    if ([...runs].some((r) => r.cancelWanted)) this.send({ type: "cancel", id });
  }

  private sendSubmit(p: PendingSubmit): void {
    p.sent = true;
    this.ws?.send(p.frame);
  }

  private sendCancel(run: TaskRun<any>): void {
    if (run.taskId !== undefined && this.state === "open") this.send({ type: "cancel", id: run.taskId });
    // Otherwise: sent on `accepted`, or by replay() after the reconnect.
  }

  private send(frame: object): void {
    this.ws?.send(JSON.stringify(frame));
  }

  // --- frames ---

  private receive(text: string): void {
    let f: Record<string, any>;
    try {
      f = JSON.parse(text);
    } catch {
      return; // not ours to judge; the server only sends JSON
    }
    if (!f || typeof f !== "object") return;
    if (f.type === "accepted") return this.accepted(String(f.ref), String(f.id));
    if (TASK_EVENTS.has(f.type) && typeof f.id === "string" && typeof f.seq === "number") return this.taskEvent(f as TaskEvent);
    if (f.type === "error") return this.refused(f);
    // "state" (the answer to a cancel) and future frame types need nothing here.
  }

  private accepted(ref: string, id: string): void {
    const p = this.pending.get(ref);
    if (!p) return;
    this.pending.delete(ref);
    p.run.accept(id);
    this.track(id, p.run);
    if (p.run.cancelWanted) this.send({ type: "cancel", id });
  }

  private taskEvent(e: TaskEvent): void {
    const runs = this.live.get(e.id);
    if (!runs) return;
    for (const r of runs) {
      r.event(e);
      if (r.done) runs.delete(r);
    }
    if (TERMINAL.has(e.type) || runs.size === 0) this.live.delete(e.id);
  }

  private refused(f: Record<string, any>): void {
    const code = typeof f.error?.code === "string" ? f.error.code : "internal";
    const err = new RequestRefusedError(code, String(f.error?.message ?? code), Array.isArray(f.error?.issues) ? (f.error.issues as Issue[]) : undefined);
    const p = typeof f.ref === "string" ? this.pending.get(f.ref) : undefined;
    if (p) {
      this.pending.delete(f.ref);
      return p.run.fail(err);
    }
    const runs = typeof f.id === "string" ? this.live.get(f.id) : undefined;
    if (runs) {
      if (code === "not_found") {
        this.live.delete(f.id);
        for (const r of runs) r.fail(err);
      } else if (TRANSIENT.has(code)) {
        // The subscribe (or cancel) did not take: try again shortly; seq dedup makes a repeat harmless.
        setTimeout(() => this.resubscribe(f.id), this.minDelay * 5);
      }
      return;
    }
    for (const fn of this.errorListeners) fn(err);
  }

  // --- bookkeeping ---

  private track(id: string, run: TaskRun<any>): void {
    let set = this.live.get(id);
    if (!set) this.live.set(id, (set = new Set()));
    set.add(run);
  }

  private refuseSent(code: string, message: string): void {
    for (const [ref, p] of this.pending) {
      if (!p.sent) continue;
      this.pending.delete(ref);
      p.run.fail(new RequestRefusedError(code, message));
    }
  }

  private shutdown(err: TaskwireError): void {
    if (this.state === "closed") return;
    clearTimeout(this.timer);
    this.setState("closed");
    const ws = this.ws;
    this.ws = undefined;
    ws?.close(1000);
    for (const p of this.pending.values()) p.run.fail(err);
    for (const runs of this.live.values()) for (const r of runs) r.fail(err);
    this.pending.clear();
    this.live.clear();
  }

  private setState(s: ConnectionState): void {
    if (this.state === s) return;
    this.state = s;
    for (const fn of this.stateListeners) fn(s);
  }
}

/** 128 random bits as hex; crypto.getRandomValues works on plain-http pages too, unlike randomUUID. */
function randomId(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
