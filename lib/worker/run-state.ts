/**
 * A started task as the worker holds it while its handler runs, why a handler is told to stop, and
 * the task options it runs under.
 */
import { type TaskOptions, readStoredOptions } from "../../tasks/define.ts";

/** Why a running handler's signal was aborted. */
export class Stop extends Error {
  constructor(readonly reason: "cancelled" | "timeout" | "shutdown", message: string) {
    super(message);
    this.name = reason === "timeout" ? "TimeoutError" : "AbortError";
  }
}

export interface Running {
  id: string;
  /** The queue shard it was taken from: its processing list and delayed set. */
  shard: number;
  task: string;
  attempt: number;
  started: number;
  /** Progress reports sent this attempt: each carries its number, so a resent one is stored once. */
  progressSent: number;
  /** Settles when the reports sent last (one batch at a time, so none overtakes an earlier one) are answered. */
  progressInFlight?: Promise<void>;
  /** Reports made while a batch was in flight: the next batch. */
  progressNext?: [n: number, json: string][];
  /** Reports waiting, by number, behind one Redis could not take; set only while Redis is unreachable. */
  held?: [n: number, json: string][];
  /** Settles when the held reports are written (or given up). */
  heldWritten?: Promise<void>;
  /** Set once the handler is told to stop (its signal, if it asked for one, is aborted with the reason). */
  stopped: Stop | undefined;
  stop(s: Stop): void;
}

/** Parsed options by their JSON: most tasks of a kind carry the same few, so each is parsed once. */
const optionsCache = new Map<string, TaskOptions>();

export function parseOptions(json: string): TaskOptions {
  let opts = optionsCache.get(json);
  if (opts) return opts;
  opts = readStoredOptions(json);
  if (optionsCache.size >= 1_000) optionsCache.clear(); // bounded: distinct per-submit overrides must not grow it
  optionsCache.set(json, opts);
  return opts;
}
