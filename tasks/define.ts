/** What a task is: a name, a zod schema for its args, a handler, and its retry/timeout defaults. */
import type { z } from "zod";

export interface TaskContext {
  /** The server-generated task id. */
  id: string;
  /** 1 on the first run, 2 on the first retry, ... */
  attempt: number;
  /** Aborted when the task is cancelled, times out, or the worker shuts down past its grace period. */
  signal: AbortSignal;
  /** Publishes a `progress` event to every watcher; ordered with the task's other events. */
  progress(data: unknown): void;
}

export interface TaskOptions {
  /** Retries after the first attempt when the handler throws or times out. */
  retries: number;
  /** First retry delay; doubles each retry, with up to 50% jitter, capped at backoff_max_ms. */
  backoff_ms: number;
  backoff_max_ms: number;
  /** Hard limit for one attempt; 0 means none. */
  timeout_ms: number;
}

export interface TaskDefinition<S extends z.ZodType = z.ZodType, R = unknown> {
  name: string;
  description?: string;
  args: S;
  options?: Partial<TaskOptions>;
  run(args: z.infer<S>, ctx: TaskContext): Promise<R> | R;
}

export const defaultTaskOptions: TaskOptions = { retries: 0, backoff_ms: 1_000, backoff_max_ms: 60_000, timeout_ms: 0 };

/**
 * A task's options as stored with it: only those that differ from defaultTaskOptions ("{}" when none do).
 * Redis keeps a hash whose values are all at most 64 bytes (hash-max-listpack-value) as a listpack; the
 * four options in full are 69 bytes, and would make every task's hash a hashtable: 3.4 times the memory,
 * for RESULT_TTL_S. An older taskwire's full form reads the same.
 */
export function storedOptions(o: TaskOptions): string {
  const differ: Partial<TaskOptions> = {};
  for (const name of Object.keys(defaultTaskOptions) as (keyof TaskOptions)[]) if (o[name] !== defaultTaskOptions[name]) differ[name] = o[name];
  return JSON.stringify(differ);
}

/** A stored task's options, the defaults filled in; a form this code cannot read gives the defaults. */
export function readStoredOptions(json: string | undefined): TaskOptions {
  try {
    return { ...defaultTaskOptions, ...(JSON.parse(json ?? "{}") as Partial<TaskOptions>) };
  } catch {
    return defaultTaskOptions;
  }
}

/** Identity at run time; gives `run` its args type from the schema. */
export function defineTask<S extends z.ZodType, R>(def: TaskDefinition<S, R>): TaskDefinition<S, R> {
  if (!/^[A-Za-z][A-Za-z0-9_.:-]{0,63}$/.test(def.name)) throw new Error(`task name ${JSON.stringify(def.name)}: use a letter then letters, digits, _ . : - (max 64)`);
  return def;
}

/** Resolves after ms, or rejects when the signal aborts first. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    const t = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
