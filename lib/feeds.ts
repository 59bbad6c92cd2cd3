/**
 * Fan-out of task events from Redis to local watchers (sockets, SSE streams). Tasks submitted through this
 * server are heard on its inbox channel, subscribed once at start on a connection of its own (one Redis;
 * see lib/lua/prelude.lua); any other task on its own sharded channel (SSUBSCRIBE, on the node owning its
 * slot), once however many watchers it has. Pub/sub is only the fast path: every join and every gap reads
 * the stored log, and each watcher gets each seq once, in order, whatever raced.
 */
import { newTaskId } from "./ids.ts";
import type { EventSubscriber } from "./redis.ts";
import { ShardSubscriber } from "./shard-subscriber.ts";
import type { Keys } from "./keys.ts";
import type { Logger } from "./log.ts";
import type { Client } from "./scripts.ts";
import { type EventEntry, parseEntry, type Queue } from "./queue.ts";

/**
 * The connection the inbox is subscribed on: ioredis's client, or Bun's (lib/bun-inbox.ts). "ready" fires on
 * each (re)connect; a reconnected connection may have lost the subscription, so Feeds subscribes again.
 */
export interface InboxConnection extends Reconnecting {
  on(event: "message", listener: (channel: string, message: string) => void): unknown;
  on(event: "ready", listener: () => void): unknown;
  subscribe(channel: string): Promise<unknown>;
}

/** A connection that says when it is ready again (ioredis's clients, lib/bun-inbox.ts). */
interface Reconnecting {
  readonly status: string;
  on(event: "ready", listener: () => void): unknown;
}

/** Log reads a resync tries before it waits for the next reconnect (about a minute of backoff). */
const RESYNC_TRIES = 35;

export interface Watcher {
  /** Last seq this watcher has been given (events after it are still owed). */
  sent: number;
  /** Called once per seq, in order; `final` is the last call this watcher gets for the task. */
  deliver(e: EventEntry): void;
}

interface Feed {
  id: string;
  channel: string;
  /** Highest seq handed to live watchers. */
  lastSeq: number;
  /** Caught-up watchers: each has sent === lastSeq. */
  live: Set<Watcher>;
  /** Watchers reading the log until they reach lastSeq. */
  catching: Set<Watcher>;
  /** The task's own channel subscription, once a watcher other than its submitter needed it. */
  onChannel: Promise<unknown> | undefined;
  resyncing: boolean;
  /** Highest seq heard on the channel; while it is past lastSeq a log read is owed (see resync). */
  heard: number;
  /** Seq of the final event once seen: nothing comes after it. */
  finalSeq: number;
}

const unreachable = () => Promise.reject(new Error("Connection is closed: Redis is unreachable"));

export class Feeds {
  private readonly feeds = new Map<string, Feed>();
  private readonly byChannel = new Map<string, Feed>();
  /** This server's inbox channel; "" without an inbox client (none on a cluster, where a PUBLISH reaches every node). */
  readonly inbox: string;
  /** The inbox subscription as of the last (re)connect: an enqueue naming the inbox waits for it. */
  private inboxLive: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly sub: EventSubscriber,
    private readonly queue: Queue,
    private readonly keys: Keys,
    private readonly log: Logger,
    /**
     * Subscriber connection for the inbox. Not the task channels' one: ioredis leaves subscriber mode when
     * an SUNSUBSCRIBE reply counts 0 shard channels left, even with plain channels still subscribed.
     */
    private readonly inboxClient?: InboxConnection,
  ) {
    sub.on("smessage", (channel: string, message: string) => this.onMessage(channel, message));
    // ioredis resubscribes by itself after a reconnect; what was published meanwhile is only in the log.
    // On a cluster the ShardSubscriber says when: a master's connection came back, or slots moved.
    if (sub instanceof ShardSubscriber) sub.on("resync", () => this.resyncAll());
    else onReconnect(sub, () => this.resyncAll());
    this.inbox = inboxClient ? keys.inbox(newTaskId()) : "";
    if (inboxClient) {
      inboxClient.on("message", (channel: string, message: string) => {
        if (channel === this.inbox) this.onInbox(message);
      });
      this.inboxLive = this.listenInbox(inboxClient);
      onReconnect(inboxClient, () => {
        this.inboxLive = this.listenInbox(inboxClient); // before any holdNew can see the old, settled one
        this.resyncAll();
      });
    }
  }

  /** Resolves once the inbox is subscribed (at start-up). */
  ready(): Promise<void> {
    return this.inboxLive.then(() => {});
  }

  /** Number of tasks watched here. */
  get size(): number {
    return this.feeds.size;
  }

  /**
   * Holds `w` on task `id` without delivering anything yet, subscribed to its channel. Call release()
   * when the watcher may receive events (e.g. after `accepted` went out).
   */
  async hold(id: string, w: Watcher): Promise<void> {
    const feed = this.feedFor(id);
    feed.catching.add(w);
    try {
      await this.listen(feed);
    } catch (err) {
      this.drop(feed, w);
      throw err;
    }
  }

  /**
   * hold() for a task this server is about to create with id `id`: resolves the inbox channel to store
   * with it (enqueue), once the inbox is subscribed, so every event it publishes is heard. "" (on a
   * cluster): the task's channel is subscribed instead.
   */
  async holdNew(id: string, w: Watcher): Promise<string> {
    if (!this.inboxClient) {
      await this.hold(id, w);
      return "";
    }
    const feed = this.feedFor(id);
    feed.catching.add(w);
    try {
      // While Redis is unreachable, fail now (the caller answers `unavailable`).
      await (this.inboxClient.status === "ready" ? this.inboxLive : unreachable());
    } catch (err) {
      this.drop(feed, w);
      throw err;
    }
    return this.inbox;
  }

  /**
   * Lets a held watcher catch up and go live. `fresh` means the caller knows the log was empty when
   * the watcher was held (a task it just created), so no log read is needed unless events raced ahead.
   * Resolves false when the task does not exist (the watcher is then dropped).
   */
  async release(id: string, w: Watcher, fresh: boolean): Promise<boolean> {
    const feed = this.feeds.get(id);
    if (!feed || !feed.catching.has(w)) return true;
    let mustRead = !fresh;
    try {
      while (feed.catching.has(w) && (mustRead || w.sent < feed.lastSeq)) {
        const first = mustRead;
        mustRead = false;
        // Read from the feed's position too, so the read also fills any gap of the live watchers.
        const { exists, entries } = await this.queue.events(id, Math.min(w.sent, feed.lastSeq));
        if (first && !fresh && !exists && entries.length === 0) {
          this.drop(feed, w);
          return false;
        }
        this.absorb(feed, entries);
        for (const raw of entries) {
          if (!feed.catching.has(w)) break;
          const e = parseEntry(raw);
          if (e.final) feed.finalSeq = e.seq;
          if (e.seq !== w.sent + 1) continue;
          w.sent = e.seq;
          if (e.final) this.drop(feed, w);
          w.deliver(e);
        }
      }
    } catch (err) {
      this.drop(feed, w);
      throw err;
    }
    if (!feed.catching.delete(w)) return true;
    // A watcher already past the final event (e.g. `after` beyond it) has nothing left to wait for.
    if (feed.finalSeq && w.sent >= feed.finalSeq) this.drop(feed, w);
    else feed.live.add(w);
    return true;
  }

  /** hold + release: watch a task from seq `after` on. */
  async watch(id: string, w: Watcher): Promise<boolean> {
    await this.hold(id, w);
    return this.release(id, w, false);
  }

  unwatch(id: string, w: Watcher): void {
    const feed = this.feeds.get(id);
    if (feed) this.drop(feed, w);
  }

  /** Every per-task channel we hold a subscription for (tests and /metrics). */
  channels(): string[] {
    return [...this.byChannel.keys()];
  }

  private feedFor(id: string): Feed {
    let feed = this.feeds.get(id);
    if (feed) return feed;
    feed = {
      id, channel: this.keys.channel(id), lastSeq: 0, live: new Set(), catching: new Set(), onChannel: undefined,
      resyncing: false, finalSeq: 0, heard: 0,
    };
    this.feeds.set(id, feed);
    return feed;
  }

  /** Subscribes the feed's own channel (once; again after a failure). */
  private listen(feed: Feed): Promise<unknown> {
    if (feed.onChannel) return feed.onChannel;
    // While Redis is unreachable, fail now (the caller answers `unavailable`) rather than queue the
    // subscribe until a reconnect that may never come.
    const p = this.sub.status === "ready" ? this.sub.ssubscribe(feed.channel) : unreachable();
    feed.onChannel = p;
    this.byChannel.set(feed.channel, feed);
    p.catch(() => {
      if (feed.onChannel !== p) return;
      feed.onChannel = undefined; // the next watcher tries again
      if (this.byChannel.get(feed.channel) === feed) this.byChannel.delete(feed.channel);
    });
    return p;
  }

  private listenInbox(c: InboxConnection): Promise<unknown> {
    const p = c.subscribe(this.inbox);
    p.catch((err: unknown) => this.log.warn("could not subscribe to this server's inbox; will retry on the next reconnect", String(err)));
    return p;
  }

  private drop(feed: Feed, w: Watcher): void {
    feed.live.delete(w);
    feed.catching.delete(w);
    if (feed.live.size === 0 && feed.catching.size === 0 && this.feeds.get(feed.id) === feed) {
      this.feeds.delete(feed.id);
      if (feed.onChannel) {
        feed.onChannel = undefined;
        if (this.byChannel.get(feed.channel) === feed) this.byChannel.delete(feed.channel);
        this.sub.sunsubscribe(feed.channel).catch(() => {}); // a dead connection has no subscription to end
      }
    }
  }

  /** An entry on a task's own channel. */
  private onMessage(channel: string, message: string): void {
    const feed = this.byChannel.get(channel);
    if (feed) this.onEntry(feed, message, 0);
  }

  /** "<id> <entry>" on the inbox. */
  private onInbox(message: string): void {
    const sp = message.indexOf(" ");
    const feed = this.feeds.get(message.slice(0, sp));
    if (feed) this.onEntry(feed, message, sp + 1);
  }

  /** An entry heard on pub/sub, at `start` in `message`. */
  private onEntry(feed: Feed, message: string, start: number): void {
    let e: EventEntry;
    try {
      e = parseEntry(start === 0 ? message : message.slice(start));
      if (!Number.isSafeInteger(e.seq) || e.seq < 1) throw new Error("bad seq");
    } catch (err) {
      this.log.warn(`dropping malformed event of ${feed.id}`, String(err));
      return;
    }
    if (e.seq <= feed.lastSeq) return;
    if (e.seq > feed.heard) feed.heard = e.seq;
    if (e.seq > feed.lastSeq + 1) return this.resync(feed); // we missed some: the log has them all
    this.fanOut(feed, e);
  }

  /** Hands in-order log entries newer than lastSeq to the live watchers. */
  private absorb(feed: Feed, entries: string[]): void {
    for (const raw of entries) {
      const e = parseEntry(raw);
      if (e.seq === feed.lastSeq + 1) this.fanOut(feed, e);
    }
  }

  private fanOut(feed: Feed, e: EventEntry): void {
    feed.lastSeq = e.seq;
    if (e.final) feed.finalSeq = e.seq;
    for (const w of feed.live) {
      if (e.seq <= w.sent) {
        if (e.final) this.drop(feed, w); // joined past the end: nothing can follow
        continue; // joined with an `after` beyond the feed's position
      }
      w.sent = e.seq;
      if (e.final) this.drop(feed, w);
      w.deliver(e);
    }
  }

  /**
   * After a reconnect: subscribe again (the inbox, and every task channel we hold) and only then read
   * the logs, so an event is either in what we read or published after we listen. ('ready' fires before
   * ioredis's own resubscribe is sent; subscribing twice is harmless.) One channel per command: on a
   * cluster each goes to its slot's master. A failure waits for the next 'ready'.
   */
  private resyncAll(): void {
    const feeds = [...this.feeds.values()];
    if (feeds.length === 0) return;
    const onChannel = feeds.filter((f) => f.onChannel);
    Promise.all([this.inboxLive, ...onChannel.map((f) => this.sub.ssubscribe(f.channel))]).then(
      () => {
        for (const f of feeds) if (this.feeds.get(f.id) === f) this.resync(f);
        for (const f of onChannel) {
          if (!this.byChannel.has(f.channel)) this.sub.sunsubscribe(f.channel).catch(() => {}); // dropped meanwhile
        }
      },
      (err) => this.log.warn("could not resubscribe after a reconnect; will retry on the next one", String(err)),
    );
  }

  /** Reads the log past lastSeq; retried with backoff while the command connection is still down. */
  private resync(feed: Feed, attempt = 0): void {
    if (feed.resyncing) return;
    feed.resyncing = true;
    let failed = false;
    const from = feed.lastSeq;
    this.queue
      .events(feed.id, feed.lastSeq)
      .then(({ entries }) => this.absorb(feed, entries))
      .catch((err) => {
        failed = true;
        if (attempt === 0) this.log.warn(`could not read events of ${feed.id}; retrying`, String(err));
      })
      .finally(() => {
        feed.resyncing = false;
        if (failed && this.feeds.get(feed.id) === feed && attempt < RESYNC_TRIES) {
          setTimeout(() => this.resync(feed, attempt + 1), Math.min(100 * 2 ** attempt, 2_000));
        } else if (!failed && this.feeds.get(feed.id) === feed && feed.heard > feed.lastSeq && feed.lastSeq > from) {
          // Events heard while this read was in flight were dropped as gaps and may not be in what it
          // read: read again (only while reads make progress, so an expired log cannot loop).
          this.resync(feed);
        }
      });
  }
}

/** Calls `f` each time `c` is ready again after its first connection. */
function onReconnect(c: Reconnecting, f: () => void): void {
  let connectedOnce = c.status === "ready";
  c.on("ready", () => {
    if (connectedOnce) f();
    connectedOnce = true;
  });
}
