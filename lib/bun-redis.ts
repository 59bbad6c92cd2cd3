/**
 * The per-task commands (a server's submit; a worker's BLMOVE and its start, progress and outcome scripts)
 * over Bun's built-in Redis client, on one Redis: a round trip costs the process less CPU than through
 * ioredis (bench/NOTES.md, "Where the rest goes"). ioredis keeps everything else, and a cluster (Bun's client has none).
 */
import { RedisClient } from "bun";
import { parseClusterUrl, parseUnixUrl } from "./config.ts";
import { isRedisDown } from "./errors.ts";
import type { Logger } from "./log.ts";
import { RECONNECT_MAX_MS, type Role } from "./redis.ts";
import { type RunScript, type Scripts, scriptSource } from "./scripts.ts";
import type { BlockingMove } from "./worker/blocking.ts";

/**
 * Bun's client for one of a process's roles, reconnecting for ever (the most Bun takes); commands issued in
 * one turn leave in one write, in the order issued. Throws where Bun's client cannot serve the URL.
 */
export function openBunClient(url: string, role: Role, offlineQueue: boolean): RedisClient {
  const target = BunRedis.url(url);
  if (!target) throw new Error(`Bun's Redis client cannot serve ${role} for this REDIS_URL (a cluster, or a socket URL with db or password)`);
  return new RedisClient(target, { enableOfflineQueue: offlineQueue, autoReconnect: true, maxRetries: 2 ** 32 - 1, enableAutoPipelining: true });
}

/** Connects `client`, or rejects if Redis has not answered within timeoutMs. */
export async function connectWithin(client: RedisClient, timeoutMs: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`Redis did not answer within ${timeoutMs} ms`)), timeoutMs)));
  try {
    await Promise.race([client.connect(), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether this process sends its per-task commands through Bun's client: asked for, and able to serve this URL. */
export function useBunRedis(config: { TASK_REDIS_CLIENT: "bun" | "ioredis"; REDIS_URL: string }): boolean {
  return config.TASK_REDIS_CLIENT === "bun" && BunRedis.url(config.REDIS_URL) !== undefined;
}

export class BunRedis implements BlockingMove {
  /** The URL as Bun's client takes it, or undefined where it cannot serve: a cluster, or a socket URL with a db or password. */
  static url(url: string): string | undefined {
    if (parseClusterUrl(url)) return undefined;
    const unix = parseUnixUrl(url);
    if (!unix) return /^rediss?:\/\//.test(url) ? url : undefined;
    return unix.db === undefined && unix.password === undefined ? `redis+unix://${unix.path}` : undefined;
  }

  private readonly client: RedisClient;
  private readonly shas = new Map<keyof Scripts, string>();
  /** Scripts sent to Redis on this connection: a new connection (a restarted Redis) has none. */
  private readonly loaded = new Set<keyof Scripts>();
  private down = false;
  private closed = false;
  /** Called on each (re)connect: a reply lost with the old connection may have left work to audit. */
  onReady: () => void = () => {};
  /** Waiting for the next (re)connect: resent() calls whose connection dropped before their reply. */
  private reconnectWaiters: (() => void)[] = [];

  constructor(url: string, private readonly role: Extract<Role, "command" | "blocking">, private readonly log: Logger, private readonly name: string) {
    // As createRedis: commands fail at once while Redis is down (the callers retry); a blocking move waits for it.
    this.client = openBunClient(url, role, role === "blocking");
    this.client.onconnect = () => {
      this.loaded.clear();
      if (this.down) this.log.info(`redis ${role} connection restored`);
      this.down = false;
      // Named like the ioredis clients, so CLIENT LIST (and the operator reading it) tells the roles apart.
      this.client.send("CLIENT", ["SETNAME", `${this.name}:${this.role}`]).catch(() => {});
      this.onReady();
      for (const w of this.reconnectWaiters.splice(0)) w();
    };
  }

  /** Connects, or rejects if Redis has not answered within timeoutMs. */
  connect(timeoutMs: number): Promise<void> {
    return connectWithin(this.client, timeoutMs);
  }

  /**
   * Runs one of lib/lua's scripts by name (EVALSHA). Its first use on a connection sends SCRIPT LOAD just
   * before, unawaited: Redis runs one connection's commands in the order sent, so calls keep their order
   * (an EVAL sent after a NOSCRIPT reply would land after the calls issued meanwhile: a progress report
   * after its task's outcome, and dropped). Only a SCRIPT FLUSH on a live connection still takes that path.
   */
  readonly script: RunScript = (async (name: keyof Scripts, keys: readonly (string | number)[], args: readonly (string | number)[]) => {
    const lua = scriptSource(name);
    let sha = this.shas.get(name);
    if (!sha) this.shas.set(name, (sha = new Bun.CryptoHasher("sha1").update(lua).digest("hex")));
    if (!this.loaded.has(name)) {
      this.loaded.add(name);
      this.client.send("SCRIPT", ["LOAD", lua]).catch(() => this.loaded.delete(name));
    }
    // One array, not three: this runs for every start, progress report and outcome.
    const rest = [String(keys.length)];
    for (const a of keys) rest.push(String(a));
    for (const a of args) rest.push(String(a));
    try {
      return await this.client.send("EVALSHA", [sha, ...rest]);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith("NOSCRIPT")) throw this.seen(err);
      this.loaded.clear();
      return await this.client.send("EVAL", [lua, ...rest]).catch((e) => Promise.reject(this.seen(e)));
    }
  }) as RunScript;

  /**
   * As script(), for an idempotent script whose caller must not be told "Redis down" after Redis ran it: a
   * call whose connection dropped before its reply is sent once more after the reconnect (within
   * RECONNECT_MAX_MS and a little), as ioredis does. A call made while Redis is already down fails at once.
   */
  readonly resent: RunScript = (async (name: keyof Scripts, keys: readonly (string | number)[], args: readonly (string | number)[]) => {
    try {
      return await this.script(name, keys, args);
    } catch (err) {
      // Bun's words for a command that was sent and lost its reply; one never sent says "...offline queue is disabled".
      if (!(err instanceof Error) || err.message !== "Connection closed" || this.closed) throw err;
      const back = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), RECONNECT_MAX_MS + 1_000);
        this.reconnectWaiters.push(() => (clearTimeout(timer), resolve(true)));
      });
      if (!back) throw err;
      return await this.script(name, keys, args);
    }
  }) as RunScript;

  /** BLMOVE source → destination (right to left), waiting up to timeoutS for an element. */
  async blmove(source: string, destination: string, timeoutS: number): Promise<string | null> {
    try {
      return (await this.client.send("BLMOVE", [source, destination, "RIGHT", "LEFT", String(timeoutS)])) as string | null;
    } catch (err) {
      throw this.seen(err);
    }
  }

  close(): void {
    this.closed = true;
    this.client.close();
  }

  /** Logs the first connection failure of an outage (the callers retry quietly); returns the error. */
  private seen(err: unknown): unknown {
    if (isRedisDown(err) && !this.down && !this.closed) {
      this.log.warn(`redis ${this.role} connection error: ${err instanceof Error ? err.message : String(err)}`);
      this.down = true;
    }
    return err;
  }
}
