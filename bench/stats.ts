/** Latency samples and their percentiles for the load generator (exact: every sample kept, sorted once). */

export interface Percentiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export class Samples {
  private buf = new Float64Array(1 << 16);
  private n = 0;

  add(ms: number): void {
    if (this.n === this.buf.length) {
      const bigger = new Float64Array(this.buf.length * 2);
      bigger.set(this.buf);
      this.buf = bigger;
    }
    this.buf[this.n++] = ms;
  }

  get count(): number {
    return this.n;
  }

  percentiles(): Percentiles {
    const s = this.buf.slice(0, this.n).sort();
    // Nearest-rank: the smallest sample with at least p of all samples at or below it.
    const at = (p: number) => (this.n === 0 ? 0 : s[Math.min(this.n - 1, Math.max(0, Math.ceil(p * this.n) - 1))]!);
    let sum = 0;
    for (const x of s) sum += x;
    return { count: this.n, p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999), max: this.n ? s[this.n - 1]! : 0, mean: this.n ? sum / this.n : 0 };
  }
}

/** Median of a few numbers (the runner's summary of 3 runs). */
export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
