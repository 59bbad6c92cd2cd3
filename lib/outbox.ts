/**
 * Sends frames to one reader without letting a slow one grow our memory: once its sink is past the
 * high-water mark, progress events are coalesced to the latest per task until it drains; terminal and
 * state events are never dropped; a reader that stays over the mark for closeAfterMs is cut off.
 * The sink is a WebSocket (wsSink) or an SSE stream (views/tasks.ts).
 */
import type { ServerWebSocket } from "bun";
import type { EventEntry } from "./queue.ts";

/** Progress events coalesced away on this server since it started (all sockets and streams). */
let coalescedTotal = 0;

/** Prometheus lines for /metrics: bytes Bun holds for slow readers, and how much progress they skipped. */
export function outboxMetrics(sockets: Iterable<ServerWebSocket<any>>): string {
  let total = 0;
  let max = 0;
  for (const ws of sockets) {
    const n = ws.getBufferedAmount();
    total += n;
    if (n > max) max = n;
  }
  return [
    "# HELP taskwire_send_buffered_bytes Bytes queued in this server for sockets that have not read them.",
    "# TYPE taskwire_send_buffered_bytes gauge",
    `taskwire_send_buffered_bytes ${total}`,
    "# HELP taskwire_send_buffered_bytes_max The most queued for any one socket.",
    "# TYPE taskwire_send_buffered_bytes_max gauge",
    `taskwire_send_buffered_bytes_max ${max}`,
    "# HELP taskwire_progress_coalesced_total Progress events skipped for slow readers (a newer one replaced them).",
    "# TYPE taskwire_progress_coalesced_total counter",
    `taskwire_progress_coalesced_total ${coalescedTotal}`,
  ].join("\n") + "\n";
}

/** Where an Outbox writes. */
export interface Sink {
  /** Queues text for the reader; true when that leaves the sink past its high-water mark. */
  write(text: string): boolean;
  /** Whether it is still past the mark (asked when it drains). */
  over(): boolean;
  /** Cuts off a reader stuck past the mark. */
  abort(): void;
}

/** A WebSocket as a sink: send() -> -1 means Bun queued it; only past highWater bytes do we hold progress back. */
export function wsSink(ws: ServerWebSocket<any>, highWater: number): Sink {
  return {
    // 0 (dropped: the socket is closing) needs nothing here; its watches end in the close hook.
    write: (text) => ws.send(text) === -1 && ws.getBufferedAmount() > highWater,
    over: () => ws.getBufferedAmount() > highWater,
    abort: () => ws.close(1013, "client too slow to read"),
  };
}

/** A byte-sized ReadableStream (an SSE response) as a sink: past its highWaterMark desiredSize goes to 0 and below. */
export function streamSink(controller: ReadableStreamDefaultController<Uint8Array>, abort: () => void): Sink {
  const over = () => (controller.desiredSize ?? 0) <= 0;
  return {
    write(text) {
      controller.enqueue(encoder.encode(text));
      return over();
    },
    over,
    abort,
  };
}

const encoder = new TextEncoder();

export class Outbox {
  /** Task id -> its latest progress event not yet sent. */
  private readonly held = new Map<string, EventEntry>();
  private congested = false;
  private stuckTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly sink: Sink,
    private readonly closeAfterMs: number,
    /** How an event is written: the /ws frame itself, or an SSE record around it. */
    private readonly format: (e: EventEntry) => string = (e) => e.frame,
  ) {}

  /** A control frame (accepted, error, state): always queued. */
  send(text: string): void {
    this.write(text);
  }

  event(taskId: string, e: EventEntry): void {
    if (e.progress) {
      if (this.congested || this.held.has(taskId)) {
        if (this.held.has(taskId)) coalescedTotal++;
        this.held.set(taskId, e);
        return;
      }
    } else {
      const held = this.held.get(taskId);
      if (held !== undefined) {
        this.held.delete(taskId);
        // Before a final event a held progress is stale: skipping it is the allowed coalescing gap.
        if (e.final) coalescedTotal++;
        else this.write(this.format(held));
      }
    }
    this.write(this.format(e));
  }

  /** The sink took what was buffered (Bun's `drain`, a stream's `pull`); once under the mark, send what we held. */
  drain(): void {
    if (!this.congested || this.sink.over()) return;
    this.congested = false;
    this.clearStuck();
    for (const [id, e] of this.held) {
      if (this.congested) break;
      this.held.delete(id);
      this.write(this.format(e));
    }
  }

  dispose(): void {
    this.held.clear();
    this.clearStuck();
  }

  private write(text: string): void {
    if (!this.sink.write(text) || this.congested) return;
    this.congested = true;
    this.stuckTimer ??= setTimeout(() => {
      this.stuckTimer = undefined;
      if (this.congested) this.sink.abort();
    }, this.closeAfterMs);
  }

  private clearStuck(): void {
    clearTimeout(this.stuckTimer);
    this.stuckTimer = undefined;
  }
}
