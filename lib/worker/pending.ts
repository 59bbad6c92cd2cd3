/** A blocking Redis command kept waiting across turns of a loop: issued once, its outcome taken once. */
export class Pending<T> {
  private waiting_: Promise<void> | undefined;
  private outcome: { value: T } | { error: unknown } | undefined;

  /** Issues the command unless one is still waiting; resolves when it has an outcome (never rejects). */
  wait(issue: () => Promise<T>): Promise<void> {
    this.waiting_ ??= issue().then(
      (value) => void (this.outcome = { value }),
      (error) => void (this.outcome = { error }),
    );
    return this.waiting_;
  }

  /** Issued and still without an outcome. */
  get waiting(): boolean {
    return this.waiting_ !== undefined && this.outcome === undefined;
  }

  /** The outcome once it came (undefined before), rethrowing a failure; the next wait issues again. */
  take(): T | undefined {
    const o = this.outcome;
    if (!o) return undefined;
    this.outcome = undefined;
    this.waiting_ = undefined;
    if ("error" in o) throw o.error;
    return o.value;
  }
}
