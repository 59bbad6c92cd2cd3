/**
 * The SDK's types: task args and results inferred from the server's registry (tasks/index.ts, imported
 * as types only, so no server code reaches the bundle), the task events of PROTOCOL.md section 2, options.
 */
import type { z } from "zod";
import type { Tasks } from "../tasks/index.ts";

/** Any registry shaped like tasks/index.ts: task name -> definition with a zod `args` schema and a `run`. */
export type TaskRegistry = { [name: string]: { args: z.ZodType; run(...a: never[]): unknown } };

/** The built-in registry: what `connect()` infers from unless given another. */
export type DefaultTasks = Tasks;

/** What `submit` accepts for task N: the schema's input type, so optional and defaulted fields may be left out. */
export type TaskArgs<T extends TaskRegistry, N extends keyof T> = z.input<T[N]["args"]>;

/** What `run.result` resolves to for task N: the awaited return type of its `run`. */
export type TaskResult<T extends TaskRegistry, N extends keyof T> = Awaited<ReturnType<T[N]["run"]>>;

/** Per-submit overrides of the task's retry and timeout defaults (see tasks/define.ts). */
export interface TaskOptions {
  retries?: number;
  backoff_ms?: number;
  backoff_max_ms?: number;
  timeout_ms?: number;
}

export interface SubmitOptions {
  /** Idempotency key: a second submit with the same key (within the result TTL) joins the first task. */
  key?: string;
  options?: TaskOptions;
}

/** `submit`'s parameters after the task name: args may be left out when every field is optional. */
export type SubmitParams<T extends TaskRegistry, N extends keyof T> = {} extends TaskArgs<T, N>
  ? [args?: TaskArgs<T, N>, opts?: SubmitOptions]
  : [args: TaskArgs<T, N>, opts?: SubmitOptions];

export interface ProgressEvent {
  type: "progress";
  id: string;
  seq: number;
  data: unknown;
}
/** The task went back to the queue (a retry, or its worker died); carries the server's details. */
export interface QueuedEvent {
  type: "queued";
  id: string;
  seq: number;
  [detail: string]: unknown;
}
export interface ResultEvent<R = unknown> {
  type: "result";
  id: string;
  seq: number;
  result: R;
}
export interface FailedEvent {
  type: "failed";
  id: string;
  seq: number;
  /** code: "task_error" (the handler threw), "timeout" or "exhausted" (retries used up). */
  error: { code: string; message: string };
}
export interface CancelledEvent {
  type: "cancelled";
  id: string;
  seq: number;
}

/** One event of a task, numbered by `seq` (1, 2, 3...); the last is a result, failed or cancelled event. */
export type TaskEvent<R = unknown> = ProgressEvent | QueuedEvent | ResultEvent<R> | FailedEvent | CancelledEvent;
export type TaskEventType = TaskEvent["type"];

export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

export interface ConnectOptions {
  /** TASKWIRE_TOKEN, sent as ?token= (browsers cannot set headers on a WebSocket). */
  token?: string;
  /** First reconnect delay; doubles per failed attempt, with jitter, up to maxDelayMs. Default 200. */
  minDelayMs?: number;
  /** Default 10000. */
  maxDelayMs?: number;
}
