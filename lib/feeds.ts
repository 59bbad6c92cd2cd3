/**
 * Fan-out of task events from Redis to local watchers (sockets, SSE streams). One sharded-channel
 * subscription (SSUBSCRIBE) per task however many watchers it has, on the node that owns the task's slot;
 * pub/sub is only the fast path: every join and every gap reads the stored log, and each watcher gets
 * each seq once, in order, whatever raced.
 */
import type { EventSubscriber } from "./redis.ts";
import { ShardSubscriber } from "./shard-subscriber.ts";
import type { Keys } from "./keys.ts";
import type { Logger } from "./log.ts";
import { type EventEntry, parseEntry, type Queue } from "./queue.ts";

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
  subscribed: Promise<unknown>;
  resyncing: boolean;
  /** Highest seq heard on the channel; while it is past lastSeq a log read is owed (see resync). */
  heard: number;
  /** Seq of the final event once seen: nothing comes after it. */
  finalSeq: number;
}

export class Feeds {
  private readonly feeds = new Map<string, Feed>();
  private readonly byChannel = new Map<string, Feed>();

  constructor(
    private readonly sub: EventSubscriber,
    private readonly queue: Queue,
    private readonly keys: Keys,
    private readonly log: Logger,
  ) {
    sub.on("smessage", (channel: string, message: string) => this.onMessage(channel, message));
    // ioredis resubscribes by itself after a reconnect; what was published meanwhile is only in the log.
    // On a cluster the ShardSubscriber says when: a master's connection came back, or slots moved.
    if (sub instanceof ShardSubscriber) {
      sub.on("resync", () => this.resyncAll());
    } else {
      let connectedOnce = false;
      sub.on("ready", () => {
        if (connectedOnce) this.resyncAll();
        connectedOnce = true;
      });
    }
  }

  /** Number of tasks with a live Redis subscription here. */
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
      await feed.subscribed;
    } catch (err) {
      this.drop(feed, w);
      throw err;
    }
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

  /** Every channel we hold a subscription for (tests and /metrics). */
  channels(): string[] {
    return [...this.byChannel.keys()];
  }

  private feedFor(id: string): Feed {
    let feed = this.feeds.get(id);
    if (feed) return feed;
    const channel = this.keys.channel(id);
    feed = {
      id, channel, lastSeq: 0, live: new Set(), catching: new Set(), resyncing: false, finalSeq: 0, heard: 0,
      // While Redis is unreachable, fail now (the caller answers `unavailable`) rather than queue the
      // subscribe until a reconnect that may never come.
      subscribed: this.sub.status === "ready" ? this.sub.ssubscribe(channel) : Promise.reject(new Error("Connection is closed: Redis is unreachable")),
    };
    feed.subscribed.catch(() => {}); // observed by hold(); avoid an unhandled rejection in between
    this.feeds.set(id, feed);
    this.byChannel.set(channel, feed);
    return feed;
  }

  private drop(feed: Feed, w: Watcher): void {
    feed.live.delete(w);
    feed.catching.delete(w);
    if (feed.live.size === 0 && feed.catching.size === 0 && this.feeds.get(feed.id) === feed) {
      this.feeds.delete(feed.id);
      this.byChannel.delete(feed.channel);
      this.sub.sunsubscribe(feed.channel).catch(() => {}); // a dead connection has no subscription to end
    }
  }

  private onMessage(channel: string, message: string): void {
    const feed = this.byChannel.get(channel);
    if (!feed) return;
    let e: EventEntry;
    try {
      e = parseEntry(message);
      if (!Number.isSafeInteger(e.seq) || e.seq < 1) throw new Error("bad seq");
    } catch (err) {
      this.log.warn(`dropping malformed event on ${channel}`, String(err));
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
   * After a reconnect: subscribe to every channel again and only then read the logs, so an event is
   * either in what we read or published after we listen. ('ready' fires before ioredis's own resubscribe
   * is sent; subscribing twice is harmless.) One channel per command: on a cluster each goes to its
   * slot's master. A failure waits for the next 'ready'.
   */
  private resyncAll(): void {
    const feeds = [...this.feeds.values()];
    if (feeds.length === 0) return;
    Promise.all(feeds.map((f) => this.sub.ssubscribe(f.channel))).then(
      () => {
        for (const f of feeds) {
          if (this.feeds.get(f.id) === f) this.resync(f);
          else if (!this.byChannel.has(f.channel)) this.sub.sunsubscribe(f.channel).catch(() => {}); // dropped meanwhile
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
