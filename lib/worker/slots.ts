/** Run slots, handed out first come first served, so every shard's loop gets its turn. */
export class Slots {
  private readonly waiting: ((ok: boolean) => void)[] = [];
  private closed = false;
  constructor(private free: number) {}

  /** Resolves true with one slot, or false once closed. */
  acquire(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (this.free > 0 && this.waiting.length === 0) {
      this.free--;
      return Promise.resolve(true);
    }
    return new Promise((r) => this.waiting.push(r));
  }

  /** Up to n more slots at once, unless another loop is waiting for one. */
  grab(n: number): number {
    if (this.waiting.length > 0) return 0;
    const got = Math.min(n, this.free);
    this.free -= got;
    return got;
  }

  release(n = 1): void {
    this.free += n;
    while (this.free > 0 && this.waiting.length > 0) {
      this.free--;
      this.waiting.shift()!(true);
    }
  }

  close(): void {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w(false);
  }
}
