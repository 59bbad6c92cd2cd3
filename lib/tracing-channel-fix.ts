/**
 * Gives Bun's diagnostics_channel TracingChannel the `hasSubscribers` getter Node has (Bun 1.4 lacks it).
 * ioredis traces a command only when that getter is not `false`, so without it every command pays for a
 * tracing context, argument sanitising (regexes) and a wrapper promise that nobody listens to.
 */
import dc from "node:diagnostics_channel";

const proto = Object.getPrototypeOf(dc.tracingChannel("taskwire:probe")) as object;
if (!("hasSubscribers" in proto)) {
  Object.defineProperty(proto, "hasSubscribers", {
    configurable: true,
    get(this: Record<"start" | "end" | "asyncStart" | "asyncEnd" | "error", { hasSubscribers: boolean }>) {
      return this.start.hasSubscribers || this.end.hasSubscribers || this.asyncStart.hasSubscribers ||
        this.asyncEnd.hasSubscribers || this.error.hasSubscribers;
    },
  });
}
