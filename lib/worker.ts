/**
 * The worker loop: one loop per queue shard takes task ids (a take script, or BLMOVE when the shard is
 * empty) into this worker's processing list for that shard, then starts each with the task's own
 * script; up to `concurrency` handlers run at once, and each outcome is written with one task script
 * (the start, progress and outcome scripts of one turn of the event loop leave as one write: over Bun's
 * Redis client on one Redis, lib/bun-redis.ts, or as one ioredis pipeline, lib/batch.ts).
 * A heartbeat keeps this worker alive in the registry; any live worker reaps dead ones' tasks.
 */
import { hostname } from "node:os";
import { getTask } from "../tasks/index.ts";
import { isRedisDown } from "./errors.ts";
import type { Keys } from "./keys.ts";
import type { Logger } from "./log.ts";
import { Batch } from "./batch.ts";
import type { BunRedis } from "./bun-redis.ts";
import { isCluster, RECONNECT_MAX_MS } from "./redis.ts";
import type { Client, ScriptedRedis } from "./scripts.ts";
import { Tally } from "./tally.ts";
import { HandBack } from "./worker/handback.ts";
import { Outcomes } from "./worker/outcomes.ts";
import type { BlockingMove } from "./worker/blocking.ts";
import { type Running, Stop, parseOptions } from "./worker/run-state.ts";
import { Slots } from "./worker/slots.ts";
import { Taker } from "./worker/take.ts";

/** How long a stopping worker keeps trying to hand its tasks back before leaving them to the reaper. */
const HANDBACK_RETRY_MS = 5_000;
/** A BLMOVE that took longer than this had to wait for its id: the queue was empty (ms; a round trip is well under). */
const QUIET_WAIT_MS = 0.25;
/** At low rates, finished ids are dropped from our processing list this many at a time. */
const DROP_BATCH = 64;
/** Heartbeats between two checks of our own processing list for ids we hold but do not run. */
const AUDIT_EVERY = 10;
/** Silent workers reaped per heartbeat at most; more wait for the next. */
const REAP_MAX = 100;

export interface WorkerSettings {
  concurrency: number;
  ttlS: number;
  heartbeatMs: number;
  deadMs: number;
  eventsMax: number;
  /** How often a task may lose its worker before it ends `exhausted`. */
  maxLosses: number;
}

export interface WorkerClients {
  command: ScriptedRedis;
  /** One per queue shard (keys.shards): a BLMOVE holds its connection. Bun's client where `tasks` is. */
  blocking: BlockingMove[];
  subscriber: Client;
  /** One Redis: Bun's client, for the start, take, progress and outcome scripts (lib/bun-redis.ts). Without it they go through `command`. */
  tasks?: BunRedis;
}

export class Worker {
  readonly id = `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  private readonly running = new Map<string, Running>();
  private stopping = false;
  private readonly slots: Slots;
  /** Per shard, ids whose outcome is written and that still sit in our processing list: the next take drops them. */
  private readonly done: string[][];
  private readonly tally: Tally;
  private readonly outcomes: Outcomes;
  private readonly handBack: HandBack;
  private readonly taker: Taker;
  /** Wakes close() when a handler ends. */
  private slotFree: (() => void) | undefined;
  private timers: ReturnType<typeof setInterval>[] = [];
  private loopDone: Promise<void> = Promise.resolve();
  private closing: Promise<void> | undefined;
  /** Since when heartbeats have succeeded without a break (undefined while Redis is unreachable). */
  private upSince: number | undefined;
  private lastBeat: number | undefined;
  private ticking: Promise<void> | undefined;
  private ticks = 0;
  /** Per shard, set after a reconnect (and now and then): its loop checks our processing list for orphans. */
  private readonly auditDue: boolean[];
  /** Cancels heard for ids not running here (yet): a claim whose reply is still on its way must see them. */
  private readonly earlyCancels = new Map<string, number>();
  readonly startedAt = Date.now();
  /** Redis's clock minus ours (ms), from the last heartbeat: the times we publish are on Redis's clock. */
  private clockOffset = 0;

  constructor(
    private readonly clients: WorkerClients,
    private readonly keys: Keys,
    private readonly settings: WorkerSettings,
    private readonly log: Logger,
  ) {
    this.slots = new Slots(settings.concurrency);
    // Task scripts (starts, progress, outcomes) of one turn go out together, in the order written.
    const run = clients.tasks?.script ?? new Batch(clients.command).script;
    this.tally = new Tally(clients.command, keys, log);
    this.auditDue = Array.from({ length: keys.shards }, () => false);
    this.done = Array.from({ length: keys.shards }, () => []);
    this.outcomes = new Outcomes(run, keys, settings, this.tally, log, this.done, () => this.promote(), !isCluster(clients.command));
    this.handBack = new HandBack(clients.command, keys, settings, this.tally);
    this.taker = new Taker(clients.command, run, keys, this.id, settings, this.done);
  }

  private activeKey(shard: number): string {
    return this.keys.active(this.id, shard);
  }

  async start(): Promise<void> {
    const { subscriber } = this.clients;
    subscriber.on("message", (_ch: string, msg: string) => {
      if (!msg.startsWith("cancel ")) return;
      const id = msg.slice(7);
      const r = this.running.get(id);
      if (r) return r.stop(new Stop("cancelled", "cancelled"));
      const now = Date.now();
      this.earlyCancels.set(id, now);
      for (const [old, at] of this.earlyCancels) {
        if (now - at < 10_000) break;
        this.earlyCancels.delete(old);
      }
    });
    await subscriber.subscribe(this.keys.control);
    // The first heartbeat already publishes our start time on Redis's clock (later beats keep the offset fresh).
    await this.measureClock();
    // A reply lost while Redis restarted can leave ids in our processing list that nothing here runs.
    this.clients.command.on("ready", () => this.auditDue.fill(true));
    if (this.clients.tasks) this.clients.tasks.onReady = () => this.auditDue.fill(true);
    this.clients.blocking.forEach((c, shard) => (c.onReady = () => (this.auditDue[shard] = true)));
    await this.heartbeat();
    this.timers.push(setInterval(() => void this.tick(), this.settings.heartbeatMs));
    // Safety net for retries whose own timer died with the worker that scheduled them.
    this.timers.push(setInterval(() => void this.promote(), 1_000));
    this.loopDone = Promise.all(this.clients.blocking.map((_, shard) => this.loop(shard))).then(() => {});
  }

  /**
   * Takes from one shard. A turn holds run slots only while it takes without blocking; blocked in
   * BLMOVE it holds none, and an id BLMOVE hands it waits (taken, not started) for the next free slot.
   * After a take came back short the queue was empty: the next turn goes straight to BLMOVE, and unless
   * BLMOVE had to wait (a quiet queue), the take for the other free slots rides with the moved id's start
   * (one round trip for both). On one Redis a take also starts what it takes (one round trip); on a
   * cluster the ids it took start next.
   */
  private async loop(shard: number): Promise<void> {
    const blocking = this.clients.blocking[shard]!;
    const queue = this.keys.queue(shard);
    const active = this.activeKey(shard);
    let failures = 0;
    let idle = false;
    while (!this.stopping) {
      let held = 0;
      try {
        // Only here, between this loop's takes, is every id in this shard's processing list one we run or one we lost track of.
        if (this.auditDue[shard]) await this.audit(shard);
        if (!(await this.slots.acquire())) break;
        // Busy: let the other handlers that end in this turn free their slots too, and take for all at once.
        if (this.running.size > 0) await new Promise((r) => setImmediate(r));
        held = 1 + this.slots.grab(this.settings.concurrency);
        let ids: string[] = [];
        let want: number | undefined = held;
        if (idle) {
          this.slots.release(held);
          held = 0;
          const waitFrom = performance.now();
          const moved = await blocking.blmove(queue, active, 2);
          // Timed out: the next turn takes (and drops from our list what has finished meanwhile).
          if (!moved) idle = false;
          if (!moved || this.stopping) continue; // a move that raced close() is handed back by it
          if (!(await this.slots.acquire())) break;
          held = 1 + this.slots.grab(this.settings.concurrency);
          ids = [moved];
          // BLMOVE waited (the queue was empty until this id came): most likely nothing is behind it, so at low
          // rates the start goes alone, without a take for the other slots (a script call per task), until ids
          // to drop from our processing list pile up. An id already waiting (a burst) brings the take back.
          const quiet = performance.now() - waitFrom > QUIET_WAIT_MS && this.done[shard]!.length < DROP_BATCH;
          want = quiet ? undefined : held - 1;
        }
        while (ids.length > 0 || want !== undefined) {
          const { started, taken, moved, ours } = await this.taker.begin(shard, ids, want);
          if (want) idle = moved < want;
          // Started here already, yet not running here: the audit hands it back (see starting.lua).
          if (ours > 0) this.auditDue[shard] = true;
          held -= started.length;
          failures = 0;
          for (const [id, task, args, opts, attempt] of started) this.run(id, shard, task, args, opts, attempt);
          ids = taken;
          want = undefined;
        }
        this.slots.release(held);
        held = 0;
      } catch (err) {
        this.slots.release(held);
        if (this.stopping) break;
        // Redis is down or restarting: back off exponentially (capped), then try again.
        failures++;
        if (failures === 1 || !isRedisDown(err)) this.log.warn("claim failed; retrying", String(err));
        await Bun.sleep(Math.min(50 * 2 ** failures, 2_000));
      }
    }
  }

  private run(id: string, shard: number, name: string, argsJson: string, optsJson: string, attempt: number): void {
    // An AbortController costs more than a no-op task: made only for a handler that reads ctx.signal.
    let abort: AbortController | undefined;
    let reject: ((s: Stop) => void) | undefined;
    const stoppedP = new Promise<never>((_, rej) => (reject = rej));
    const r: Running = {
      id, shard, task: name, attempt, started: Date.now(), progressSent: 0, stopped: undefined,
      stop: (s) => {
        if (r.stopped) return;
        r.stopped = s;
        abort?.abort(s);
        reject!(s);
      },
    };
    this.running.set(id, r);
    if (this.earlyCancels.delete(id)) r.stop(new Stop("cancelled", "cancelled"));
    const opts = parseOptions(optsJson);
    const timer = opts.timeout_ms > 0
      ? setTimeout(() => r.stop(new Stop("timeout", `timed out after ${opts.timeout_ms} ms`)), opts.timeout_ms)
      : undefined;
    const done = (async () => {
      const def = getTask(name);
      if (!def) throw new Error(`this worker has no task named ${name}`);
      const args = def.args.parse(JSON.parse(argsJson));
      return def.run(args, {
        id, attempt,
        get signal() {
          if (!abort) {
            abort = new AbortController();
            if (r.stopped) abort.abort(r.stopped);
          }
          return abort.signal;
        },
        progress: (data) => this.outcomes.progress(r, data),
      });
    })();
    const ended = Promise.race([done, stoppedP]);
    // The slot frees when the handler ends, not when its outcome is stored: concurrency bounds handlers, and a
    // slot held across the write's round trip would idle. The task stays in `running` until stored (close() waits).
    const free = () => {
      clearTimeout(timer);
      this.slots.release();
    };
    ended.then(free, free);
    ended
      .then(
        (result) => this.outcomes.succeed(r, result),
        (err) => this.outcomes.fail(r, err, opts),
      )
      .catch((err) => this.log.error(`could not record the outcome of ${id}`, err))
      .finally(() => {
        this.running.delete(id);
        this.slotFree?.();
        this.slotFree = undefined;
      });
    done.catch(() => {}); // after a stop the handler's own rejection is expected and unobserved
  }


  private tick(): Promise<void> {
    // A slow Redis must not stack up heartbeats.
    this.ticking ??= (async () => {
      await this.heartbeat();
      await this.reap();
      if (++this.ticks % AUDIT_EVERY === 0) this.auditDue.fill(true);
    })().finally(() => (this.ticking = undefined));
    return this.ticking;
  }

  /** Redis's clock minus ours, from one TIME round trip (before the first heartbeat, which measures it too). */
  private async measureClock(): Promise<void> {
    try {
      const sent = Date.now();
      const [s, us] = await this.clients.command.time();
      this.setClockOffset(Number(s) * 1000 + Number(us) / 1000, sent, Date.now());
    } catch (err) {
      this.log.debug("could not read Redis's clock; the next heartbeat will", String(err));
    }
  }

  /** Redis's time `redisMs`, read by a round trip from `sent` to `received` (our clock), taken as its midpoint. */
  private setClockOffset(redisMs: number, sent: number, received: number): void {
    this.clockOffset = Math.round(redisMs - (sent + received) / 2);
  }

  private async heartbeat(): Promise<void> {
    const info = JSON.stringify({
      id: this.id, host: hostname(), pid: process.pid, concurrency: this.settings.concurrency, started: this.startedAt + this.clockOffset,
      running: [...this.running.values()].map((r) => ({ id: r.id, task: r.task, attempt: r.attempt, started: r.started + this.clockOffset })),
    });
    try {
      const sent = Date.now();
      const at = await this.clients.command.twBeat(this.keys.workers, this.keys.worker(this.id), this.id, info, this.settings.deadMs);
      const now = Date.now();
      this.setClockOffset(at, sent, now);
      // A gap in our own beats (an outage, or this process frozen or starved) restarts the wait too.
      if (this.lastBeat !== undefined && now - this.lastBeat > this.settings.deadMs) this.upSince = now;
      this.upSince ??= now;
      this.lastBeat = now;
    } catch (err) {
      this.upSince = undefined;
      this.log.debug("heartbeat failed", String(err));
    }
  }

  /** Hands back the tasks of workers whose heartbeat is older than deadMs. */
  private async reap(): Promise<void> {
    // After an outage every heartbeat is stale: trust another worker's silence only once we have been
    // connected long enough for it to have reconnected (at most RECONNECT_MAX_MS) and beaten again.
    if (this.upSince === undefined || Date.now() - this.upSince < this.settings.deadMs + RECONNECT_MAX_MS) return;
    const k = this.keys;
    try {
      const [, , silent] = await this.clients.command.twRegistry(k.workers, this.settings.deadMs, REAP_MAX);
      for (let i = 0; i < silent.length; i += 2) {
        const wid = silent[i]!;
        if (wid === this.id) continue;
        const n = await this.handBack.requeue(wid, "lost");
        if (n >= 0) this.log.warn(`worker ${wid} is gone; ${n} of its tasks went back to the queue`);
      }
    } catch (err) {
      this.log.debug("reap failed", String(err));
    }
  }

  /** Hands back ids in our processing list for `shard` that no handler here runs. Called by that shard's loop only. */
  private async audit(shard: number): Promise<void> {
    this.auditDue[shard] = false;
    let n: number;
    try {
      // Ids whose outcome is written (finished, or waiting in the delayed set) are not orphans.
      n = await this.handBack.requeue(this.id, "orphan", [shard], new Set([...this.running.keys(), ...this.done[shard]!]));
    } catch (err) {
      this.auditDue[shard] = true; // Redis still down: try again on the next turn
      throw err;
    }
    if (n > 0) this.log.warn(`${n} tasks taken but not run here (a reply lost to a Redis outage) went back to the queue`);
  }

  private async promote(): Promise<void> {
    const k = this.keys;
    for (let shard = 0; shard < k.shards; shard++) {
      try {
        await this.clients.command.twPromote(k.delayed(shard), k.queue(shard), 1000);
      } catch {
        // next tick tries again
      }
    }
  }

  /**
   * Stops taking tasks, lets running ones finish within graceMs, hands the rest back to the queue and
   * leaves the registry. Idempotent: a second call returns the same promise.
   */
  close(graceMs: number): Promise<void> {
    this.closing ??= this.doClose(graceMs);
    return this.closing;
  }

  private async doClose(graceMs: number): Promise<void> {
    this.stopping = true;
    this.slots.close();
    this.slotFree?.();
    for (const b of this.clients.blocking) b.close(); // interrupts a pending BLMOVE; what it moved is handed back below
    await this.loopDone.catch(() => {});
    const deadline = Date.now() + graceMs;
    // Heartbeats go on meanwhile, or a grace period longer than WORKER_DEAD_MS would get our tasks reaped.
    while (this.running.size > 0 && Date.now() < deadline) {
      await Promise.race([Bun.sleep(Math.min(50, deadline - Date.now())), new Promise<void>((r) => (this.slotFree = r))]);
    }
    for (const t of this.timers) clearInterval(t);
    await this.ticking; // a heartbeat landing after the hand-back would sign us up again
    const left = [...this.running.values()];
    for (const r of left) r.stop(new Stop("shutdown", "worker shutting down"));
    try {
      const n = await this.outcomes.write("hand-back of unfinished tasks", () => this.handBack.requeue(this.id, "shutdown", undefined, new Set(this.done.flat())), HANDBACK_RETRY_MS);
      if (n > 0) this.log.info(`handed ${n} unfinished tasks back to the queue`);
    } catch (err) {
      this.log.error("could not hand tasks back; the reaper will once our heartbeat expires", String(err));
    }
    await this.tally.flush();
    await this.clients.subscriber.unsubscribe(this.keys.control).catch(() => {});
  }
}
