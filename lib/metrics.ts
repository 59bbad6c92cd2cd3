/** In-process counters and the submit-to-result latency histogram, rendered with Redis-wide counts as Prometheus text. */

const BUCKETS_MS = [0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000];

export class Metrics {
  readonly buckets = new Array<number>(BUCKETS_MS.length).fill(0);
  latencyCount = 0;
  latencySumMs = 0;
  submits = 0;
  errorsByCode = new Map<string, number>();
  /** Finished tasks seen here per second, for the dashboard's live throughput chart. */
  private finishedThisSecond = 0;
  readonly throughput: number[] = [];

  constructor() {
    setInterval(() => {
      this.throughput.push(this.finishedThisSecond);
      if (this.throughput.length > 120) this.throughput.shift();
      this.finishedThisSecond = 0;
    }, 1000).unref();
  }

  observeLatency(ms: number): void {
    this.latencyCount++;
    this.latencySumMs += ms;
    this.finishedThisSecond++;
    for (let i = 0; i < BUCKETS_MS.length; i++) {
      if (ms <= BUCKETS_MS[i]!) {
        this.buckets[i]!++;
        break;
      }
    }
  }

  countError(code: string): void {
    this.errorsByCode.set(code, (this.errorsByCode.get(code) ?? 0) + 1);
  }

  /** Latency percentile (ms) estimated from the histogram: the upper edge of the bucket holding it. */
  percentile(p: number): number {
    let seen = 0;
    const target = this.latencyCount * p;
    for (let i = 0; i < BUCKETS_MS.length; i++) {
      seen += this.buckets[i]!;
      if (seen >= target && seen > 0) return BUCKETS_MS[i]!;
    }
    return this.latencyCount > seen ? Infinity : 0;
  }

  render(g: { stats: Record<string, string>; queueDepth: number; delayed: number; workers: number; running: number; sockets: number; feeds: number }): string {
    const out: string[] = [];
    const metric = (name: string, type: string, help: string) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    const label = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
    const byOutcome = new Map<string, [string, string][]>();
    for (const [field, value] of Object.entries(g.stats)) {
      const i = field.indexOf(":");
      const outcome = field.slice(0, i);
      (byOutcome.get(outcome) ?? byOutcome.set(outcome, []).get(outcome)!).push([field.slice(i + 1), value]);
    }
    for (const outcome of ["submitted", "succeeded", "failed", "cancelled"]) {
      const name = `taskwire_tasks_${outcome}_total`;
      metric(name, "counter", `Tasks ${outcome}, by task name (all servers and workers).`);
      for (const [task, v] of byOutcome.get(outcome) ?? []) out.push(`${name}{task="${label(task)}"} ${v}`);
    }
    metric("taskwire_queue_depth", "gauge", "Tasks waiting in the queue.");
    out.push(`taskwire_queue_depth ${g.queueDepth}`);
    metric("taskwire_tasks_delayed", "gauge", "Tasks waiting for a retry backoff.");
    out.push(`taskwire_tasks_delayed ${g.delayed}`);
    metric("taskwire_tasks_running", "gauge", "Tasks running on live workers.");
    out.push(`taskwire_tasks_running ${g.running}`);
    metric("taskwire_workers", "gauge", "Live workers.");
    out.push(`taskwire_workers ${g.workers}`);
    metric("taskwire_sockets", "gauge", "WebSockets connected to this server.");
    out.push(`taskwire_sockets ${g.sockets}`);
    metric("taskwire_task_subscriptions", "gauge", "Tasks this server watches (on its inbox or their own channel).");
    out.push(`taskwire_task_subscriptions ${g.feeds}`);
    metric("taskwire_request_errors_total", "counter", "Requests refused, by error code (this server).");
    for (const [code, n] of this.errorsByCode) out.push(`taskwire_request_errors_total{code="${code}"} ${n}`);
    metric("taskwire_submit_to_result_ms", "histogram", "Submit-to-final-event latency (ms) of tasks submitted over this server's /ws and /async_task/.");
    let cum = 0;
    BUCKETS_MS.forEach((b, i) => {
      cum += this.buckets[i]!;
      out.push(`taskwire_submit_to_result_ms_bucket{le="${b}"} ${cum}`);
    });
    out.push(`taskwire_submit_to_result_ms_bucket{le="+Inf"} ${this.latencyCount}`);
    out.push(`taskwire_submit_to_result_ms_sum ${this.latencySumMs}`);
    out.push(`taskwire_submit_to_result_ms_count ${this.latencyCount}`);
    return out.join("\n") + "\n";
  }
}
