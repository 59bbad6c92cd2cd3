/**
 * Sharded pub/sub on a Redis Cluster: SSUBSCRIBE must reach the master that owns the channel's slot, and
 * ioredis's own routing (`shardedSubscribers`) walks every subscribed slot on each (un)subscribe. This keeps
 * one subscriber connection per master, maps slot -> master from the cluster's slot table, and after a
 * topology change or a reconnect emits "resync": the owner (lib/feeds.ts) subscribes again and reads logs.
 */
import { EventEmitter } from "node:events";
import { type Cluster, Redis } from "ioredis";
import type { ClusterTarget } from "./config.ts";
import type { Logger } from "./log.ts";

export class ShardSubscriber extends EventEmitter {
  /** Master "host:port" -> its subscriber connection. */
  private readonly conns = new Map<string, Redis>();
  /** Channel -> the master it is subscribed on. */
  private readonly where = new Map<string, string>();

  /** `topology`: a cluster client used only for its slot table and its refresh events. */
  constructor(
    private readonly topology: Cluster,
    private readonly target: ClusterTarget,
    private readonly name: string,
    private readonly log: Logger,
  ) {
    super();
    topology.on("ready", () => this.emit("ready"));
    topology.on("refresh", () => this.rebalance());
  }

  get status(): string {
    return this.topology.status;
  }

  ssubscribe(channel: string): Promise<unknown> {
    const node = this.owner(channel);
    if (!node) return Promise.reject(new Error(`Connection is closed: no cluster node owns the slot of ${channel} yet`));
    this.where.set(channel, node);
    return this.conn(node).ssubscribe(channel);
  }

  sunsubscribe(channel: string): Promise<unknown> {
    const node = this.where.get(channel);
    this.where.delete(channel);
    return node ? (this.conns.get(node)?.sunsubscribe(channel) ?? Promise.resolve()) : Promise.resolve();
  }

  async quit(): Promise<void> {
    await Promise.all([...this.conns.values()].map((c) => c.quit().catch(() => c.disconnect())));
    await this.topology.quit();
  }

  disconnect(): void {
    for (const c of this.conns.values()) c.disconnect();
    this.topology.disconnect();
  }

  private owner(channel: string): string | undefined {
    return this.topology.slots[keySlot(channel)]?.[0];
  }

  private conn(node: string): Redis {
    let c = this.conns.get(node);
    if (c) return c;
    const i = node.lastIndexOf(":");
    c = new Redis({
      host: node.slice(0, i), port: Number(node.slice(i + 1)), connectionName: `${this.name}:subscriber`,
      username: this.target.username, password: this.target.password, tls: this.target.tls ? {} : undefined,
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2_000), maxRetriesPerRequest: 1,
    });
    c.on("smessage", (ch: string, msg: string) => this.emit("smessage", ch, msg));
    // ioredis resubscribes by itself after a reconnect; what was published meanwhile is only in the log.
    let connectedOnce = false;
    c.on("ready", () => {
      if (connectedOnce) this.emit("resync");
      connectedOnce = true;
    });
    let down = false;
    c.on("error", (err: Error) => {
      if (!down) this.log.warn(`redis subscriber connection to ${node} error: ${err.message}`);
      down = true;
    });
    c.on("ready", () => (down = false));
    this.conns.set(node, c);
    return c;
  }

  /** After a slot table refresh: channels whose slot moved leave their old master; the resync subscribes them anew. */
  private rebalance(): void {
    let moved = 0;
    for (const [channel, node] of this.where) {
      if (this.owner(channel) === node) continue;
      this.where.delete(channel);
      this.conns.get(node)?.sunsubscribe(channel).catch(() => {});
      moved++;
    }
    const masters = new Set(this.where.values());
    for (const [node, c] of this.conns) {
      if (masters.has(node)) continue;
      this.conns.delete(node); // no longer a master we listen on
      c.disconnect();
    }
    if (moved > 0) this.emit("resync");
  }
}

/** Redis Cluster's slot of a key or shard channel: CRC16 (XMODEM) of its hash tag, or of the whole name, mod 16384. */
export function keySlot(key: string): number {
  const open = key.indexOf("{");
  const close = open >= 0 ? key.indexOf("}", open + 1) : -1;
  const hashed = close > open + 1 ? key.slice(open + 1, close) : key;
  let crc = 0;
  for (const byte of Buffer.from(hashed)) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}
