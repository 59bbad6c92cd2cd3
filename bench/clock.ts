/**
 * A precise pacer for the open-loop load generator: calls onTick(i) for i = 0 .. count-1, each once and in order,
 * as soon as t0 + i * intervalMs has come. Bun's timers fire up to ~1 ms late, which would show up as latency.
 */
import type { ClockPlan } from "./clock-thread.ts";

export interface ClockOptions {
  /** On this thread's performance.now(); a little in the future (~20 ms) so the clock thread is up by then. */
  t0: number;
  intervalMs: number;
  count: number;
}

/**
 * A clock thread wakes this thread at each tick. If this thread was busy, several ticks arrive together; every
 * index whose time has come is then delivered at once, none skipped, so callers still measure from t0 + i * intervalMs.
 * `done` settles after the last tick or on stop(); stop() ends the thread early, and is called by itself after the last tick.
 */
export function startClock(o: ClockOptions, onTick: (i: number) => void): { done: Promise<void>; stop(): void } {
  const stopFlag = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(new URL("./clock-thread.ts", import.meta.url).href);
  let next = 0;
  let stopped = false;
  let finished!: () => void;
  const done = new Promise<void>((resolve) => (finished = resolve));
  const stop = () => {
    if (stopped) return;
    stopped = true;
    finished();
    Atomics.store(stopFlag, 0, 1);
    Atomics.notify(stopFlag, 0); // wake it from Atomics.wait, which terminate() may not interrupt
    worker.terminate();
  };
  worker.onmessage = (e: MessageEvent<number>) => {
    // Up to the tick received, and past it by this thread's clock too: a late message must not hold a due send back.
    const t = performance.now();
    while (!stopped && next < o.count && (next <= e.data || o.t0 + next * o.intervalMs <= t)) onTick(next++);
    if (next >= o.count) stop();
  };
  worker.onerror = (e) => {
    stop();
    throw new Error(`clock thread failed: ${e.message}`);
  };
  const plan: ClockPlan = { t0: performance.timeOrigin + o.t0, intervalMs: o.intervalMs, count: o.count, stop: stopFlag };
  worker.postMessage(plan);
  return { done, stop };
}
