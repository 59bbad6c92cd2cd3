/**
 * The clock thread behind bench/clock.ts: posts tick i at t0 + i * intervalMs with sub-millisecond precision.
 * It runs in a Worker because only there may Atomics.wait block, and it honours fractional ms (timers do not).
 */
declare var self: Worker;

export interface ClockPlan {
  /** Epoch ms (timeOrigin + now()), the one clock both threads read alike; their performance.now() origins differ. */
  t0: number;
  intervalMs: number;
  count: number;
  /** Shared with the main thread: non-zero means stop; the main thread also notifies it to cut a wait short. */
  stop: Int32Array;
}

/** How long before a tick to stop sleeping and spin: Atomics.wait wakes about 0.075 ms late. */
const SPIN_MS = 0.08;

const clock = () => performance.timeOrigin + performance.now();

self.onmessage = (e: MessageEvent<ClockPlan>) => {
  const { t0, intervalMs, count, stop } = e.data;
  for (let i = 0; i < count && Atomics.load(stop, 0) === 0; i++) {
    const due = t0 + i * intervalMs;
    const wait = due - clock() - SPIN_MS;
    if (wait > 0) Atomics.wait(stop, 0, 0, wait);
    if (Atomics.load(stop, 0) !== 0) break;
    while (clock() < due) {} // at most SPIN_MS
    postMessage(i);
  }
};
