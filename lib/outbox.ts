/**
 * Sends frames to one socket without letting a slow reader grow our memory: once Bun reports
 * backpressure (send() -> -1), progress events are coalesced to the latest per task until `drain`;
 * final and state events are never dropped; a socket stuck past closeAfterMs is closed with 1013.
 */
import type { ServerWebSocket } from "bun";
import type { EventEntry } from "./queue.ts";

export class Outbox {
  private readonly held = new Map<string, string>();
  private congested = false;
  private stuckTimer: ReturnType<typeof setTimeout> | undefined;
  /** Progress events coalesced away so far (for tests and metrics). */
  coalesced = 0;

  constructor(
    private readonly ws: ServerWebSocket<any>,
    private readonly closeAfterMs: number,
  ) {}

  /** A control frame (accepted, error, state): always queued. */
  send(frame: string): void {
    this.write(frame);
  }

  event(taskId: string, e: EventEntry): void {
    if (e.progress) {
      if (this.congested || this.held.has(taskId)) {
        if (this.held.has(taskId)) this.coalesced++;
        this.held.set(taskId, e.frame);
        return;
      }
    } else {
      const held = this.held.get(taskId);
      if (held !== undefined) {
        this.held.delete(taskId);
        // Before a final event a held progress is stale: skipping it is the allowed coalescing gap.
        if (e.final) this.coalesced++;
        else this.write(held);
      }
    }
    this.write(e.frame);
  }

  /** Bun's `drain`: the socket took what was buffered; send what we held back. */
  drain(): void {
    this.congested = false;
    for (const [id, frame] of this.held) {
      if (this.congested) break;
      this.held.delete(id);
      this.write(frame);
    }
    if (!this.congested) this.clearStuck();
  }

  dispose(): void {
    this.held.clear();
    this.clearStuck();
  }

  private write(frame: string): void {
    const r = this.ws.send(frame);
    if (r === -1 && !this.congested) {
      this.congested = true;
      this.stuckTimer ??= setTimeout(() => {
        if (this.congested) this.ws.close(1013, "client too slow to read");
      }, this.closeAfterMs);
    }
    // r === 0: dropped because the socket is closing; its watches end in the close hook.
  }

  private clearStuck(): void {
    clearTimeout(this.stuckTimer);
    this.stuckTimer = undefined;
  }
}
