/**
 * A server's inbox subscription over Bun's built-in Redis client (one Redis, TASK_REDIS_CLIENT=bun): every
 * event of a task submitted through this server arrives here, and Bun's client costs the server less CPU
 * per message than ioredis (README "Performance"). Shaped as Feeds' InboxConnection, like ioredis's client.
 */
import { EventEmitter } from "node:events";
import type { RedisClient } from "bun";
import { connectWithin, openBunClient } from "./bun-redis.ts";
import type { InboxConnection } from "./feeds.ts";
import type { Logger } from "./log.ts";
import { RECONNECT_MAX_MS } from "./redis.ts";

export class BunInbox extends EventEmitter implements InboxConnection {
  private readonly client: RedisClient;
  /** As ioredis names it: "ready" while connected, "reconnecting" while not, "end" once closed. */
  status: "connecting" | "ready" | "reconnecting" | "end" = "connecting";
  /** Channels whose listener Bun holds: Bun keeps a listener across a reconnect, but not the subscription. */
  private readonly listening = new Set<string>();

  constructor(url: string, private readonly log: Logger, private readonly name: string) {
    super();
    // A subscribe while Redis is down fails at once; Feeds subscribes again on "ready".
    this.client = openBunClient(url, "inbox", false);
    this.client.onconnect = () => {
      if (this.status === "reconnecting") this.log.info("redis inbox connection restored");
      this.status = "ready";
      // A new connection has no name (CLIENT LIST tells the roles apart by it) and no subscription: the
      // "ready" listener (Feeds) subscribes again, then reads what was published meanwhile from the logs.
      this.client.send("CLIENT", ["SETNAME", `${this.name}:inbox`]).catch(() => {});
      this.emit("ready");
    };
    this.client.onclose = (err) => {
      if (this.status === "end") return;
      if (this.status === "ready") this.log.warn(`redis inbox connection error: ${err?.message ?? "closed"}; reconnecting (at most ${RECONNECT_MAX_MS} ms apart)`);
      this.status = "reconnecting";
    };
  }

  /** Connects, or rejects if Redis has not answered within timeoutMs. */
  connect(timeoutMs: number): Promise<void> {
    return connectWithin(this.client, timeoutMs);
  }

  /** Subscribes `channel` on this connection; its messages are emitted as ("message", channel, message). */
  subscribe(channel: string): Promise<unknown> {
    // Again after a reconnect: SUBSCRIBE alone, as a second listener would hear every message twice.
    if (this.listening.has(channel)) return this.client.send("SUBSCRIBE", [channel]);
    this.listening.add(channel);
    return this.client.subscribe(channel, (message, ch) => this.emit("message", ch, message)).catch((err: unknown) => {
      this.listening.delete(channel);
      throw err;
    });
  }

  async quit(): Promise<void> {
    this.disconnect();
  }

  disconnect(): void {
    this.status = "end";
    this.client.close();
  }
}
