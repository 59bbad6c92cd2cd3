/**
 * Per-client submit limits for HTTP: a token bucket per client address, as each /ws socket has its own
 * (views/ws.ts), so one HTTP client cannot take every submit a server can store.
 */
import type { Server } from "bun";

/** Buckets kept before the full (idle) ones are dropped: a bound on memory whatever the number of clients. */
export const MAX_CLIENTS = 100_000;

export class ClientBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    /** Tokens added per second. */
    private readonly rate: number,
    /** Most tokens a bucket holds: how many requests may arrive at once. */
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
      b = { tokens: this.burst, at: now };
      this.buckets.set(client, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.rate);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens--;
    return true;
  }

  /** A bucket that would be full again is the same as none. */
  private dropFull(now: number): void {
    for (const [client, b] of this.buckets) if (b.tokens + ((now - b.at) / 1000) * this.rate >= this.burst) this.buckets.delete(client);
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
