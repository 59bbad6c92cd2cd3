/**
 * GET /ws: many tasks per socket (PROTOCOL.md section 2). submit -> accepted -> events; subscribe
 * replays from `after` then goes live; cancel. Every refusal is an `error` frame; the socket stays open.
 */
import type { App } from "../lib/app.ts";
import { TaskwireError, toWireError } from "../lib/errors.ts";
import type { Watcher } from "../lib/feeds.ts";
import { isTaskId, newTaskId } from "../lib/ids.ts";
import { Outbox, wsSink } from "../lib/outbox.ts";
import { TokenBucket } from "../lib/rate-limit.ts";
import { FrameError, type ClientFrame, type Correlation, acceptedFrame, errorFrame, parseClientFrame, stateFrame } from "../lib/protocol.ts";
import type { EventEntry } from "../lib/queue.ts";
import type { RequestContext, Socket } from "../lib/router.ts";

/**
 * A socket's state, made on its first frame. Most of a server's sockets may sit idle (browser tabs left open),
 * and one that has not spoken needs no outbox, maps or bucket: 19,800 idle sockets cost the server 875–1,103
 * bytes each instead of 1,395–1,530 (bench/results/2026-12-03T19-33-37.md and later, against 19-32-27.md and earlier).
 */
interface Session {
  app: App;
  outbox: Outbox;
  watches: Map<string, TaskWatch>;
  /** Submits from this socket whose final event has not gone out. */
  inflight: number;
  /** SUBMIT_RATE_PER_SOCKET: submit, subscribe and cancel each take a token. */
  bucket: TokenBucket;
  closed: boolean;
}

type Ws = Socket<Session | undefined>;

class TaskWatch implements Watcher {
  sent: number;
  constructor(
    private readonly s: Session,
    readonly id: string,
    after: number,
    /** When set, the submit time: this watch counts against the in-flight limit and the latency histogram. */
    readonly submittedAt?: number,
  ) {
    this.sent = after;
  }

  deliver(e: EventEntry): void {
    const s = this.s;
    if (e.final) {
      if (s.watches.get(this.id) === this) s.watches.delete(this.id);
      if (this.submittedAt !== undefined) {
        s.inflight--;
        s.app.metrics.observeLatency(performance.now() - this.submittedAt);
      }
    }
    s.outbox.event(this.id, e);
  }
}

/** Nothing until the socket's first frame (Session). */
export function upgrade(_req: Request, _ctx: RequestContext): undefined {
  return undefined;
}

function startSession(ws: Ws): Session {
  const { app } = ws.data;
  const { SLOW_CLIENT_CLOSE_MS, SEND_HIGH_WATER_BYTES, SUBMIT_RATE_PER_SOCKET, SUBMIT_BURST_PER_SOCKET } = app.config;
  return {
    app,
    outbox: new Outbox(wsSink(ws, SEND_HIGH_WATER_BYTES), SLOW_CLIENT_CLOSE_MS),
    watches: new Map(),
    inflight: 0,
    bucket: new TokenBucket(SUBMIT_RATE_PER_SOCKET, SUBMIT_BURST_PER_SOCKET),
    closed: false,
  };
}

export function message(ws: Ws, data: string | Buffer): void {
  const s = (ws.data.state ??= startSession(ws));
  if (typeof data !== "string") return refuse(s, new TaskwireError("bad_json", "binary frames are not accepted: send JSON as a text frame"), {});
  let frame: ClientFrame;
  try {
    frame = parseClientFrame(data, s.app.config.MAX_JSON_DEPTH);
  } catch (err) {
    return refuse(s, err, err instanceof FrameError ? err.correlation : {});
  }
  // subscribe and cancel reach Redis too: they draw on the same bucket as submit (which checks its own).
  if (frame.type !== "submit" && !s.bucket.take()) {
    return refuse(s, new TaskwireError("rate_limited", `more than ${s.app.config.SUBMIT_RATE_PER_SOCKET} requests/s on this socket (SUBMIT_RATE_PER_SOCKET); retry later`), { id: frame.id });
  }
  // Handlers run concurrently; ordering guarantees come from the feeds, not from awaiting here.
  const work = frame.type === "submit" ? submit(s, frame) : frame.type === "subscribe" ? subscribe(s, frame) : cancel(s, frame);
  work.catch((err) => refuse(s, err, frame.type === "submit" ? { ref: frame.ref } : { id: frame.id }));
}

export function drain(ws: Ws): void {
  ws.data.state?.outbox.drain();
}

export function close(ws: Ws): void {
  const s = ws.data.state;
  if (!s) return;
  s.closed = true;
  for (const [id, w] of s.watches) s.app.feeds.unwatch(id, w);
  s.watches.clear();
  s.outbox.dispose();
}

function refuse(s: Session, err: unknown, c: Correlation): void {
  const wire = toWireError(err, (m, e) => s.app.log.error(m, e));
  s.app.metrics.countError(wire.code);
  if (!s.closed) s.outbox.send(errorFrame(wire, c));
}

async function submit(s: Session, f: Extract<ClientFrame, { type: "submit" }>): Promise<void> {
  const { config, queue, feeds } = s.app;
  if (!s.bucket.take()) {
    throw new TaskwireError("rate_limited", `more than ${config.SUBMIT_RATE_PER_SOCKET} submits/s on this socket (SUBMIT_RATE_PER_SOCKET); retry later`);
  }
  if (s.inflight >= config.MAX_INFLIGHT_PER_SOCKET || s.watches.size >= config.MAX_INFLIGHT_PER_SOCKET) {
    throw new TaskwireError("limit_exceeded", `${config.MAX_INFLIGHT_PER_SOCKET} tasks already in flight on this socket (MAX_INFLIGHT_PER_SOCKET); wait for some to finish`);
  }
  const v = queue.validate(f);
  const start = performance.now();
  const id = newTaskId();
  const w = new TaskWatch(s, id, 0, start);
  s.inflight++;
  s.watches.set(id, w);
  let existing: string | undefined;
  try {
    // Listen before the task exists, so no event can be published before we do.
    const inbox = await feeds.holdNew(id, w);
    const res = await queue.enqueue(v, id, inbox);
    // Not created by this call: a racing submit with the same key created it (without our inbox), or the
    // key names another task. Either way it is watched as an existing task: its channel, then its log.
    if (res.id !== id || !res.created) existing = res.id;
  } catch (err) {
    feeds.unwatch(id, w);
    if (s.watches.get(id) === w) s.watches.delete(id);
    s.inflight--;
    throw err;
  }
  // Outside the try: joinExisting settles the placeholder's accounting itself, failure included.
  if (existing !== undefined) return joinExisting(s, f.ref, existing, w, start);
  s.app.metrics.submits++;
  if (s.closed) return;
  s.outbox.send(acceptedFrame(f.ref, id));
  await feeds.release(id, w, true);
}

/** An idempotency key named an existing task: this submit watches that one instead, from its first event. */
async function joinExisting(s: Session, ref: string, taskId: string, placeholder: TaskWatch, start: number): Promise<void> {
  s.app.feeds.unwatch(placeholder.id, placeholder);
  s.watches.delete(placeholder.id);
  s.inflight--;
  if (s.closed) return;
  // Already watching it on this socket (same key sent twice): the first submit's watch delivers.
  if (s.watches.has(taskId)) return s.outbox.send(acceptedFrame(ref, taskId));
  const w = new TaskWatch(s, taskId, 0, start);
  s.inflight++;
  s.watches.set(taskId, w);
  try {
    await s.app.feeds.hold(taskId, w);
    s.outbox.send(acceptedFrame(ref, taskId));
    // false: the keyed task expired in between; the accepted stands but nothing more will come.
    if (!(await s.app.feeds.release(taskId, w, false)) && s.watches.get(taskId) === w) {
      s.watches.delete(taskId);
      s.inflight--;
    }
  } catch (err) {
    s.app.feeds.unwatch(taskId, w);
    if (s.watches.get(taskId) === w) {
      s.watches.delete(taskId);
      s.inflight--;
    }
    throw err;
  }
}

async function subscribe(s: Session, f: Extract<ClientFrame, { type: "subscribe" }>): Promise<void> {
  if (!isTaskId(f.id)) throw notFound(f.id);
  let after = f.after ?? 0;
  if (after > 0) {
    // A watch from past the final event would wait for nothing; one past the latest waits from there.
    const from = await s.app.queue.resumeFrom(f.id, after);
    if (from === undefined) throw notFound(f.id);
    if (from === "done") return;
    after = from;
  }
  const previous = s.watches.get(f.id);
  if (previous) s.app.feeds.unwatch(f.id, previous);
  else if (s.watches.size >= s.app.config.MAX_INFLIGHT_PER_SOCKET) {
    throw new TaskwireError("limit_exceeded", `this socket already watches ${s.watches.size} tasks (MAX_INFLIGHT_PER_SOCKET)`);
  }
  // Re-subscribing to a task this socket submitted keeps it counted in flight until its final event.
  const w = new TaskWatch(s, f.id, after, previous?.submittedAt);
  s.watches.set(f.id, w);
  const found = await s.app.feeds.watch(f.id, w).catch((err) => {
    if (s.watches.get(f.id) === w) s.watches.delete(f.id);
    throw err;
  });
  // A later subscribe to the same id on this socket may have replaced this watch before it could tell
  // whether the task exists: answer for this frame too (an existing task's events go to the newer watch).
  if (found && s.watches.get(f.id) !== w && (await s.app.queue.position(f.id)) === undefined) throw notFound(f.id);
  if (!found) {
    if (s.watches.get(f.id) === w) s.watches.delete(f.id);
    throw notFound(f.id);
  }
}

async function cancel(s: Session, f: Extract<ClientFrame, { type: "cancel" }>): Promise<void> {
  if (!isTaskId(f.id)) throw notFound(f.id);
  const state = await s.app.queue.cancel(f.id);
  if (state === "not_found") throw notFound(f.id);
  // Extension: tells the canceller where the task stands (cancelled, cancelling, or its final state).
  if (!s.closed) s.outbox.send(stateFrame(f.id, state));
}

function notFound(id: string): TaskwireError {
  return new TaskwireError("not_found", `id: no task ${JSON.stringify(id.slice(0, 64))} (unknown, or expired after RESULT_TTL_S)`);
}
