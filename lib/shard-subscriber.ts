/**
 * Sharded pub/sub on a Redis Cluster: SSUBSCRIBE must reach the master that owns the channel's slot, and
 * ioredis's own routing (`shardedSubscribers`) walks every subscribed slot on each (un)subscribe. This keeps
 * one subscriber connection per master, maps slot -> master from the cluster's slot table, and after a
 * topology change or a reconnect emits "resync": the owner (lib/feeds.ts) subscribes again and reads logs.
 * The topology client sends no commands, so no MOVED reply tells it of a failover: it reads the slot table
 * again when a master drops our subscriptions (an unasked SUNSUBSCRIBE, as after a failover), every second
 * while a subscriber connection is down (a crashed master's replica takes over), and every REFRESH_MS.
 */
import { EventEmitter } from "node:events";
import { type Cluster, Redis } from "ioredis";
import type { ClusterTarget } from "./config.ts";
import type { Logger } from "./log.ts";

/** The slot table is read again at least this often, whatever else happens. */
const REFRESH_MS = 10_000;
/** ... and this often while a subscriber connection is down. */
const REFRESH_DOWN_MS = 1_000;

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
    this.timer = setInterval(() => this.refresh(), REFRESH_MS).unref();
  }

  private readonly timer: ReturnType<typeof setInterval>;
  /** Set while some subscriber connection is down. */
  private downTimer: ReturnType<typeof setInterval> | undefined;
  /** Set by quit() and disconnect(): the connections' closing is ours, not a master going away. */
  private closing = false;

  /** Reads the slot table again; its "refresh" event rebalances. A failed read is retried by the timers. */
  private refresh(): void {
    if (this.topology.status === "ready") this.topology.refreshSlotsCache();
  }

  /** While a connection is down, refresh every REFRESH_DOWN_MS until every one is up (or dropped by rebalance). */
  private watchDown(): void {
    if (this.downTimer || this.closing) return;
    this.refresh();
    this.downTimer = setInterval(() => {
      if ([...this.conns.values()].every((c) => c.status === "ready")) {
        clearInterval(this.downTimer);
        this.downTimer = undefined;
      } else this.refresh();
    }, REFRESH_DOWN_MS).unref();
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
    this.stopTimers();
    await Promise.all([...this.conns.values()].map((c) => c.quit().catch(() => c.disconnect())));
    await this.topology.quit();
  }

  disconnect(): void {
    this.stopTimers();
    for (const c of this.conns.values()) c.disconnect();
    this.topology.disconnect();
  }

  private stopTimers(): void {
    this.closing = true;
    clearInterval(this.timer);
    clearInterval(this.downTimer);
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
    // ioredis's "moved": this node dropped our shard subscriptions unasked, or refused one: its slots moved.
    c.on("moved", () => this.refresh());
    c.on("close", () => this.watchDown());
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
