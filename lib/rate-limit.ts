/**
 * Token buckets: the submit limit of each /ws socket (views/ws.ts), and of each HTTP client address for
 * POST /tasks, so no one client can take every submit a server can store.
 */
import type { Server } from "bun";

/** One bucket: `rate` tokens a second, at most `burst` of them; it starts full. */
export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now = performance.now(),
  ) {
    this.tokens = burst;
    this.at = now;
  }

  /** Takes one token; false when there is none. */
  take(now = performance.now()): boolean {
    this.tokens = this.tokensAt(now);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }

  /** Full again by `now`: as good as a new bucket. */
  fullAt(now: number): boolean {
    return this.tokensAt(now) >= this.burst;
  }

  private tokensAt(now: number): number {
    return Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.rate);
  }
}

/** Buckets kept before the full (idle) ones are dropped: a bound on memory whatever the number of clients. */
export const MAX_CLIENTS = 100_000;

/** A bucket per client address. */
export class ClientBuckets {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {}

  /** Clients with a bucket now (at most MAX_CLIENTS). */
  get clients(): number {
    return this.buckets.size;
  }

  /** Takes one token from `client`'s bucket; false when it is empty. */
  take(client: string, now = performance.now()): boolean {
    let b = this.buckets.get(client);
    if (!b) {
      if (this.buckets.size >= MAX_CLIENTS) this.dropFull(now);
      b = new TokenBucket(this.rate, this.burst, now);
      this.buckets.set(client, b);
    }
    return b.take(now);
  }

  private dropFull(now: number): void {
    for (const [client, b] of this.buckets) if (b.fullAt(now)) this.buckets.delete(client);
    // Still over: every bucket is in use; the oldest entries go (Map order), their clients start again full.
    for (const client of this.buckets.keys()) {
      if (this.buckets.size < MAX_CLIENTS) break;
      this.buckets.delete(client);
    }
  }
}

/**
 * The address a request came from. With `trustProxy` it is the last address in X-Forwarded-For: the one the
 * proxy in front added. Earlier ones are the client's own say, and anyone can write those.
 */
export function clientAddress(req: Request, server: Server<any>, trustProxy: boolean): string {
  if (trustProxy) {
    const hops = req.headers.get("x-forwarded-for")?.split(",");
    const last = hops?.at(-1)?.trim();
    if (last) return last;
  }
  return server.requestIP(req)?.address ?? "unknown";
}
