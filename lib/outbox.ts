/**
 * Sends frames to one socket without letting a slow reader grow our memory: once Bun holds more than
 * the high-water mark for it (send() -> -1 and getBufferedAmount()), progress events are coalesced to
 * the latest per task until `drain` brings it back under; terminal and state events are never dropped;
 * a socket that stays over the mark for closeAfterMs is closed with 1013.
 */
import type { ServerWebSocket } from "bun";
import type { EventEntry } from "./queue.ts";

/** Progress events coalesced away on this server since it started (all sockets). */
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

export class Outbox {
  /** Task id -> its latest progress frame not yet sent. */
  private readonly held = new Map<string, string>();
  private congested = false;
  private stuckTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly ws: ServerWebSocket<any>,
    private readonly closeAfterMs: number,
    /** Bytes Bun may buffer for this socket before progress is held back (SEND_HIGH_WATER_BYTES). */
    private readonly highWater = 1024 * 1024,
  ) {}

  /** A control frame (accepted, error, state): always queued. */
  send(frame: string): void {
    this.write(frame);
  }

  event(taskId: string, e: EventEntry): void {
    if (e.progress) {
      if (this.congested || this.held.has(taskId)) {
        if (this.held.has(taskId)) this.skip();
        this.held.set(taskId, e.frame);
        return;
      }
    } else {
      const held = this.held.get(taskId);
      if (held !== undefined) {
        this.held.delete(taskId);
        // Before a final event a held progress is stale: skipping it is the allowed coalescing gap.
        if (e.final) this.skip();
        else this.write(held);
      }
    }
    this.write(e.frame);
  }

  /** Bun's `drain`: called as the buffer empties; once under the mark, send what we held back. */
  drain(): void {
    if (!this.congested || this.ws.getBufferedAmount() > this.highWater) return;
    this.congested = false;
    this.clearStuck();
    for (const [id, frame] of this.held) {
      if (this.congested) break;
      this.held.delete(id);
      this.write(frame);
    }
  }

  dispose(): void {
    this.held.clear();
    this.clearStuck();
  }

  private skip(): void {
    coalescedTotal++;
  }

  private write(frame: string): void {
    // -1: Bun queued it behind unsent bytes; only past the mark do we start holding progress.
    // 0: dropped because the socket is closing; its watches end in the close hook.
    if (this.ws.send(frame) !== -1 || this.congested || this.ws.getBufferedAmount() <= this.highWater) return;
    this.congested = true;
    this.stuckTimer ??= setTimeout(() => {
      this.stuckTimer = undefined;
      if (this.congested) this.ws.close(1013, "client too slow to read");
    }, this.closeAfterMs);
  }

  private clearStuck(): void {
    clearTimeout(this.stuckTimer);
    this.stuckTimer = undefined;
  }
}
