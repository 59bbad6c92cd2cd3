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
  /** Queues texts for the reader, in order; true when that leaves the sink past its high-water mark. */
  write(texts: string[]): boolean;
  /** Whether it is still past the mark (asked when it drains). */
  over(): boolean;
  /** Cuts off a reader stuck past the mark. */
  abort(): void;
}

/** A WebSocket as a sink: send() -> -1 means Bun queued it; only past highWater bytes do we hold progress back. */
export function wsSink(ws: ServerWebSocket<any>, highWater: number): Sink {
  // 0 (dropped: the socket is closing) needs nothing here; its watches end in the close hook.
  const sendAll = (texts: string[]) => {
    let r = 0;
    for (const t of texts) r = ws.send(t);
    return r;
  };
  return {
    // Corked, a tick's frames to one socket leave in one write instead of one syscall each.
    write: (texts) => (texts.length === 1 ? ws.send(texts[0]!) : ws.cork(() => sendAll(texts))) === -1 && ws.getBufferedAmount() > highWater,
    over: () => ws.getBufferedAmount() > highWater,
    abort: () => ws.close(1013, "client too slow to read"),
  };
}

/** A byte-sized ReadableStream (an SSE response) as a sink: past its highWaterMark desiredSize goes to 0 and below. */
export function streamSink(controller: ReadableStreamDefaultController<Uint8Array>, abort: () => void): Sink {
  const over = () => (controller.desiredSize ?? 0) <= 0;
  return {
    write(texts) {
      try {
        // SSE records concatenate: one chunk for the tick.
        controller.enqueue(encoder.encode(texts.length === 1 ? texts[0]! : texts.join("")));
      } catch {
        return false; // the reader cancelled the stream; its end() is on the way
      }
      return over();
    },
    over,
    abort,
  };
}

/** One tick's frames for one reader are sent together, up to about this much. */
const FLUSH_AT_CHARS = 64 * 1024;

/** Outboxes with frames waiting for the end of this tick; flushed together by one microtask. */
const dirty = new Set<Outbox>();
function flushDirty(): void {
  const batch = [...dirty];
  dirty.clear();
  for (const o of batch) o.flush();
}

const encoder = new TextEncoder();

export class Outbox {
  /** Task id -> its latest progress event not yet sent. */
  private readonly held = new Map<string, EventEntry>();
  private congested = false;
  /** Frames written this tick, sent together at its end. */
  private pending: string[] = [];
  private pendingChars = 0;
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

  /** Sends what this tick wrote (a final event just written included), then stops: nothing is held or timed. */
  dispose(): void {
    this.flush();
    dirty.delete(this);
    this.held.clear();
    this.clearStuck();
  }

  /** Hands this tick's frames to the sink (called by the shared microtask). */
  flush(): void {
    const texts = this.pending;
    if (texts.length === 0) return;
    this.pending = [];
    this.pendingChars = 0;
    if (!this.sink.write(texts) || this.congested) return;
    this.congested = true;
    this.stuckTimer ??= setTimeout(() => {
      this.stuckTimer = undefined;
      if (this.congested) this.sink.abort();
    }, this.closeAfterMs);
  }

  private write(text: string): void {
    this.pendingChars += text.length;
    // A burst (a replay of a long log) is flushed as it grows, so congestion is seen and progress coalesced mid-burst.
    if (this.pendingChars > FLUSH_AT_CHARS) {
      this.pending.push(text);
      return this.flush();
    }
    if (this.pending.push(text) > 1) return;
    if (dirty.size === 0) queueMicrotask(flushDirty);
    dirty.add(this);
  }

  private clearStuck(): void {
    clearTimeout(this.stuckTimer);
    this.stuckTimer = undefined;
  }
}
