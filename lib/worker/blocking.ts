/**
 * The connection a shard's loop waits on in BLMOVE, one shape for both clients: Bun's (lib/bun-redis.ts,
 * which has it already) and ioredis's (a cluster, or TASK_REDIS_CLIENT=ioredis), adapted here.
 */
import { waitReady } from "../redis.ts";
import type { Client } from "../scripts.ts";

export interface BlockingMove {
  /** BLMOVE source → destination (right to left), waiting up to timeoutS; null when nothing came. */
  blmove(source: string, destination: string, timeoutS: number): Promise<string | null>;
  /** Called on each reconnect: a move whose reply was lost leaves an id in the processing list. */
  onReady: () => void;
  /** Resolves once connected; rejects if Redis has not answered within timeoutMs. */
  connect(timeoutMs: number): Promise<void>;
  /** Ends the connection, and with it a pending move. */
  close(): void;
}

export class IoredisBlocking implements BlockingMove {
  onReady: () => void = () => {};

  constructor(private readonly client: Client) {
    client.on("ready", () => this.onReady());
  }

  async blmove(source: string, destination: string, timeoutS: number): Promise<string | null> {
    return (await this.client.blmove(source, destination, "RIGHT", "LEFT", timeoutS)) as string | null;
  }

  connect(timeoutMs: number): Promise<void> {
    return waitReady(this.client, timeoutMs);
  }

  close(): void {
    this.client.disconnect();
  }
}
