/** The producer side of the queue: validate, enqueue, cancel, and read a task's state and event log. */
import { z } from "zod";
import { type TaskDefinition, type TaskOptions, defaultTaskOptions, storedOptions } from "../tasks/define.ts";
import { getTask } from "../tasks/index.ts";
import { TaskwireError, describeIssues, fromZodIssues } from "./errors.ts";
import { newTaskId } from "./ids.ts";
import type { Keys } from "./keys.ts";
import { type Logger, makeLogger } from "./log.ts";
import { Batch } from "./batch.ts";
import type { BunRedis } from "./bun-redis.ts";
import { isCluster } from "./redis.ts";
import type { ScriptedRedis } from "./scripts.ts";
import { Tally } from "./tally.ts";

/** Per-submit overrides of a task's defaults, within these limits. */
export const optionsSchema = z.strictObject({
  retries: z.number().int().min(0).max(25).optional(),
  backoff_ms: z.number().int().min(0).max(3_600_000).optional(),
  backoff_max_ms: z.number().int().min(0).max(86_400_000).optional(),
  timeout_ms: z.number().int().min(0).max(86_400_000).optional(),
});

export interface Submission {
  task: string;
  args?: unknown;
  key?: string;
  options?: unknown;
}

export interface TaskInfo {
  id: string;
  task: string;
  state: "queued" | "running" | "succeeded" | "failed" | "cancelled";
  result?: unknown;
  error?: unknown;
  progress?: unknown;
  attempts: number;
  created_at?: number;
  started_at?: number;
  finished_at?: number;
}

export interface EventEntry {
  seq: number;
  /** The task's last event: result, failed or cancelled. */
  final: boolean;
  /** A progress event: the only kind a slow client may have coalesced away. */
  progress: boolean;
  frame: string;
}

/** "<seq> <kind> <frame>" as written by lib/lua/prelude.lua. */
export function parseEntry(entry: string): EventEntry {
  const sp = entry.indexOf(" ");
  const kind = entry.charCodeAt(sp + 1);
  return { seq: Number(entry.slice(0, sp)), final: kind === 116 /* t */, progress: kind === 112 /* p */, frame: entry.slice(sp + 3) };
}

export class Queue {
  constructor(
    private readonly redis: ScriptedRedis,
    private readonly keys: Keys,
    private readonly limits: { ttlS: number; maxArgsBytes: number },
    log: Logger = makeLogger("queue", "warn"),
    /** One Redis: Bun's client, for a submit alone in its turn (lib/bun-redis.ts; resent once if its reply is lost, as ioredis does). */
    private readonly bun?: BunRedis,
  ) {
    this.tally = new Tally(redis, keys, log);
    this.batch = new Batch(redis);
    this.single = !isCluster(redis);
  }

  /** One Redis (not a cluster): a submit stores and queues its task in one script. */
  private readonly single: boolean;

  /** Submits arriving in one turn of the event loop are written with one pipeline. */
  private readonly batch: Batch;

  /** Fleet counters for submits and cancels. */
  private readonly tally: Tally;

  /** Checks the task name, args and options; returns what enqueue needs. Throws TaskwireError. */
  validate(sub: Submission): { task: string; argsJson: string; optsJson: string; key: string } {
    const def = getTask(sub.task);
    if (!def) throw new TaskwireError("unknown_task", `task: no task named ${JSON.stringify(String(sub.task).slice(0, 64))}; GET /tasks/schema lists them`);
    const parsed = def.args.safeParse(sub.args ?? {});
    if (!parsed.success) {
      const issues = fromZodIssues(parsed.error.issues);
      throw new TaskwireError("invalid_args", `invalid args for ${def.name}: ${describeIssues(issues, "args")}`, issues);
    }
    const argsJson = JSON.stringify(parsed.data) ?? "{}";
    // What is stored is measured, in UTF-8 bytes; a string this short cannot be over (3 bytes a UTF-16 unit at most).
    const bytes = argsJson.length * 3 <= this.limits.maxArgsBytes ? 0 : Buffer.byteLength(argsJson);
    if (bytes > this.limits.maxArgsBytes) {
      throw new TaskwireError("too_large", `args: ${bytes} bytes as stored; the limit is ${this.limits.maxArgsBytes} (MAX_ARGS_BYTES)`);
    }
    return { task: def.name, argsJson, optsJson: sub.options == null ? defaultOptionsJson(def) : optionsJson(def, sub.options), key: sub.key ?? "" };
  }

  /** Next queue shard this producer fills (round-robin, so shards stay even whatever the ids). */
  private nextShard = Math.floor(Math.random() * 1_000);

  /**
   * Stores the task, then queues its id on a shard. On one Redis both are one script (one command, so
   * submits of a turn pipeline one command each). On a cluster they are two steps, safe to stop between
   * (see inOrder). A key first claims its own slot with SET NX; a key already taken names the task, and
   * re-running the steps with that id heals a submit that crashed half-way (duplicate queue entries are
   * skipped). `inbox`: the channel (Feeds.holdNew) a new task's events are also published to; an
   * existing one keeps its own.
   */
  async enqueue(v: ReturnType<Queue["validate"]>, id = newTaskId(), inbox = ""): Promise<{ id: string; created: boolean }> {
    const k = this.keys;
    const ttl = this.limits.ttlS;
    let taskId = id;
    if (v.key !== "") taskId = ((await this.redis.set(k.idem(v.key), id, "EX", ttl, "NX", "GET")) as string | null) ?? id;
    const queue = k.queue(this.nextShard++ % k.shards);
    const args = [v.task, v.argsJson, v.optsJson, ttl, v.key, taskId === id ? inbox : ""] as const;
    let created: number;
    let state: string;
    if (this.single) {
      // Queued in the same script when created, or again when it exists still queued (the repair step).
      // A submit alone in its turn goes through Bun's client (less CPU per round trip); submits that share
      // a turn leave as one ioredis pipeline, which costs less than as many calls (bench/NOTES.md).
      const scriptKeys = [k.task(taskId), queue];
      const bun = this.bun;
      [created, state] = await this.batch.one((r) => r.twEnqueueQueued(...scriptKeys, ...args, taskId),
        bun && (() => bun.resent("twEnqueueQueued", scriptKeys, [...args, taskId])));
    } else if (taskId === id) {
      // A new id: queue it unconditionally, in one round trip with the write (only a resend of this
      // very call can find the id existing, and a duplicate queue entry is skipped).
      [[created, state]] = (await this.batch.inOrder([
        (r) => r.twEnqueue(k.task(taskId), ...args),
        (r) => r.lpush(queue, taskId),
      ])) as [[number, string]];
    } else {
      [created, state] = await this.redis.twEnqueue(k.task(taskId), ...args);
      if (state === "queued") await this.redis.lpush(queue, taskId);
    }
    if (created === 1) this.tally.count(`submitted:${v.task}`);
    return { id: taskId, created: created === 1 };
  }

  /** Writes the fleet counters still pending (shutdown). */
  flushCounts(): Promise<void> {
    return this.tally.flush();
  }

  /** "not_found" | "cancelled" | "cancelling" | the final state the task already had. */
  async cancel(id: string): Promise<string> {
    const k = this.keys;
    const [outcome, name] = await this.redis.twCancel(k.task(id), k.events(id), k.channel(id), id, this.limits.ttlS);
    if (outcome === "cancelling") await this.redis.publish(k.control, `cancel ${id}`);
    if (outcome === "cancelled") this.tally.finished(id, "cancelled", name);
    return outcome;
  }

  async get(id: string): Promise<TaskInfo | undefined> {
    // The hash and the last event (a finished task's result is there): one slot, so one round trip on a cluster too.
    const [[hErr, h], [lastErr, last]] = (await this.redis.pipeline().hgetall(this.keys.task(id)).lindex(this.keys.events(id), -1).exec()) as
      [[Error | null, Record<string, string>], [Error | null, string | null]];
    if (hErr || lastErr) throw hErr ?? lastErr;
    if (!h.state) return undefined;
    return taskInfo(id, h, last ?? undefined);
  }

  /** The task's state and the seq of its latest event (`final` when nothing can follow it); undefined if unknown or expired. */
  async position(id: string): Promise<{ state: TaskInfo["state"]; seq: number; final: boolean } | undefined> {
    const [state, seq] = await this.redis.hmget(this.keys.task(id), "state", "seq");
    if (!state) return undefined;
    return { state: state as TaskInfo["state"], seq: Number(seq ?? 0), final: state === "succeeded" || state === "failed" || state === "cancelled" };
  }

  /**
   * Where a resume from seq `after` starts: undefined when the task is unknown, "done" when it is finished
   * and `after` covers its final event. An `after` past the latest event means "seen everything so far".
   */
  async resumeFrom(id: string, after: number): Promise<number | "done" | undefined> {
    const pos = await this.position(id);
    if (!pos) return undefined;
    if (pos.final && after >= pos.seq) return "done";
    return Math.min(after, pos.seq);
  }

  /** Whether the task exists, and its stored events after seq `after`, in order. */
  async events(id: string, after: number): Promise<{ exists: boolean; entries: string[] }> {
    const res = await this.redis.multi().exists(this.keys.task(id)).lrange(this.keys.events(id), after, -1).exec();
    if (!res) throw new Error("transaction aborted");
    const [existsRes, rangeRes] = res;
    if (existsRes?.[0]) throw existsRes[0];
    if (rangeRes?.[0]) throw rangeRes[0];
    return { exists: existsRes?.[1] === 1, entries: (rangeRes?.[1] as string[]) ?? [] };
  }
}

/** A task's options as stored when a submit gives none: the same string every time, so made once. */
const defaultOptions = new WeakMap<TaskDefinition, string>();
function defaultOptionsJson(def: TaskDefinition): string {
  let s = defaultOptions.get(def);
  if (s === undefined) defaultOptions.set(def, (s = optionsJson(def, {})));
  return s;
}

/** The task's options with a submit's overrides, checked; throws bad_request naming the field. */
function optionsJson(def: TaskDefinition, options: unknown): string {
  const opts = optionsSchema.safeParse(options);
  if (!opts.success) {
    const issues = fromZodIssues(opts.error.issues);
    throw new TaskwireError("bad_request", `invalid options: ${describeIssues(issues, "options")}`, issues);
  }
  return storedOptions({ ...defaultTaskOptions, ...def.options, ...opts.data } satisfies TaskOptions);
}

/** The result a final `result` event entry carries; undefined for any other entry. */
function resultOf(entry: string | undefined): unknown {
  if (entry === undefined) return undefined;
  const frame = json(parseEntry(entry).frame) as { type?: string; result?: unknown } | undefined;
  return frame?.type === "result" ? frame.result : undefined;
}

function json(s: string | undefined): unknown {
  if (s === undefined || s === "") return undefined;
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

/** A task as GET /tasks/<id> shows it, from its hash and, for a result, its final event entry. */
export function taskInfo(id: string, h: Record<string, string>, finalEntry?: string): TaskInfo {
  const num = (s: string | undefined) => (s ? Number(s) : undefined);
  const info: TaskInfo = { id, task: h.task ?? "", state: h.state as TaskInfo["state"], attempts: Number(h.attempts ?? 0) };
  // A task an older taskwire finished has its result in the hash as well.
  if (h.state === "succeeded") info.result = h.result !== undefined ? json(h.result) : resultOf(finalEntry);
  if (h.error && h.state !== "succeeded") info.error = json(h.error);
  if (h.progress) info.progress = json(h.progress);
  info.created_at = num(h.created);
  info.started_at = num(h.started);
  info.finished_at = num(h.finished);
  return info;
}
