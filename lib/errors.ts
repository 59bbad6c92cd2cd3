/** TaskwireError with PROTOCOL.md's stable codes, and the one place that turns any error into a wire error. */
import type { z } from "zod";

export type ErrorCode =
  | "bad_json" | "bad_request" | "unknown_type" | "unknown_task" | "invalid_args" | "not_found"
  | "too_large" | "rate_limited" | "limit_exceeded" | "unavailable" | "unauthorized" | "forbidden"
  | "missing_param" | "internal";

export interface Issue {
  path: (string | number)[];
  message: string;
}

export interface WireError {
  code: ErrorCode;
  message: string;
  issues?: Issue[];
}

const HTTP_STATUS: Record<ErrorCode, number> = {
  bad_json: 400, bad_request: 400, unknown_type: 400, unknown_task: 404, invalid_args: 400, not_found: 404,
  too_large: 413, rate_limited: 429, limit_exceeded: 429, unavailable: 503, unauthorized: 401, forbidden: 403,
  missing_param: 400, internal: 500,
};

export class TaskwireError extends Error {
  override name = "TaskwireError";
  constructor(readonly code: ErrorCode, message: string, readonly issues?: Issue[]) {
    super(message);
  }
  get status(): number {
    return HTTP_STATUS[this.code];
  }
}

/** zod issues as {path, message}: never the rejected input, so a client's payload is not echoed back. */
export function fromZodIssues(issues: z.core.$ZodIssue[]): Issue[] {
  return issues.map((i) => ({ path: i.path.map((p) => (typeof p === "symbol" ? String(p) : p)), message: i.message }));
}

/** Human sentence naming each field and what it needs, e.g. `args.steps: Too big: expected number to be <=10000`. */
export function describeIssues(issues: Issue[], root: string): string {
  return issues.map((i) => `${[root, ...i.path].join(".")}: ${i.message}`).join("; ");
}

/** Redis connection failures (and a Redis that is full, read-only or failing over) become `unavailable`; our own errors pass; anything else is logged and hidden. */
export function toWireError(err: unknown, log?: (msg: string, err: unknown) => void): WireError {
  if (err instanceof TaskwireError) return { code: err.code, message: err.message, ...(err.issues ? { issues: err.issues } : {}) };
  if (isRedisDown(err)) return { code: "unavailable", message: "the task store (Redis) is unreachable; retry shortly" };
  log?.("internal error", err);
  return { code: "internal", message: "internal error" };
}

export function isRedisDown(err: unknown): boolean {
  const msg = err instanceof Error ? err.message : "";
  // ioredis's, Bun's Redis client's ("Connection closed"), and Redis's own refusals while it cannot serve;
  // ioredis gives up on a cluster slot that is changing hands (its master gone, no replica promoted yet) as
  // "Too many Cluster redirections. Last error: ...".
  return /Connection is closed|Connection closed|ECONNREFUSED|ECONNRESET|Stream isn't writeable|enableOfflineQueue|max retries|LOADING|ETIMEDOUT|EPIPE|^OOM |^READONLY|^MASTERDOWN|^CLUSTERDOWN|^TRYAGAIN|^Too many Cluster redirections/i.test(msg);
}
