/** The wire: client frames for /ws parsed and checked, server frames encoded (PROTOCOL.md sections 1-2). */
import { z } from "zod";
import { TaskwireError, type WireError, fromZodIssues } from "./errors.ts";

// Messages say what to send instead: they reach the client as `error.message` and `error.issues`.
const ref = z.string({ error: "required: a string you choose to match the answer to this submit" }).max(128, "use at most 128 characters");
const id = z.string({ error: "required: the task id from `accepted` (a string)" }).min(1, "required: the task id from `accepted`").max(64, "not a task id: ids are 36 characters");

export const clientFrameSchemas = {
  submit: z.object({
    type: z.literal("submit"),
    ref,
    task: z.string({ error: "required: a task name (GET /tasks/schema lists them)" }).min(1, "required: a task name (GET /tasks/schema lists them)").max(128, "use at most 128 characters"),
    args: z.record(z.string(), z.unknown(), { error: "must be a JSON object of the task's arguments" }).optional(),
    key: z.string({ error: "must be a string (an idempotency key)" }).min(1, "use 1 to 256 characters, or leave it out").max(256, "use 1 to 256 characters").optional(),
    options: z.record(z.string(), z.unknown(), { error: "must be a JSON object (retries, backoff_ms, backoff_max_ms, timeout_ms)" }).optional(),
  }),
  subscribe: z.object({
    type: z.literal("subscribe"),
    id,
    after: z.number({ error: "must be the last seq you saw: a whole number >= 0" }).int("must be a whole number >= 0").min(0, "must be a whole number >= 0").max(Number.MAX_SAFE_INTEGER).optional(),
  }),
  cancel: z.object({ type: z.literal("cancel"), id }),
};

export type ClientFrame = { [K in keyof typeof clientFrameSchemas]: z.infer<(typeof clientFrameSchemas)[K]> }[keyof typeof clientFrameSchemas];

/** What an `error` frame may echo back so the client can correlate it. */
export interface Correlation {
  ref?: string;
  id?: string;
}

export class FrameError extends TaskwireError {
  constructor(err: TaskwireError, readonly correlation: Correlation) {
    super(err.code, err.message, err.issues);
  }
}

/** JSON.parse with the nesting limit checked first (deep input could exhaust the parser's stack). */
export function parseJson(text: string, maxDepth: number): unknown {
  if (text.length > maxDepth * 2 && nestingDepth(text) > maxDepth) {
    throw new TaskwireError("too_large", `JSON nested deeper than ${maxDepth} levels (MAX_JSON_DEPTH)`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new TaskwireError("bad_json", "frame is not valid JSON: send one UTF-8 JSON object per text frame");
  }
}

function nestingDepth(text: string): number {
  let depth = 0, max = 0, inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 || c === 91) { if (++depth > max) max = depth; }
    else if (c === 125 || c === 93) depth--;
  }
  return max;
}

/** Parses one /ws text frame; throws FrameError carrying whatever ref/id could be read. */
export function parseClientFrame(text: string, maxDepth: number): ClientFrame {
  let value: unknown;
  try {
    value = parseJson(text, maxDepth);
  } catch (err) {
    throw new FrameError(err as TaskwireError, {});
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new FrameError(new TaskwireError("bad_request", 'frame must be a JSON object with a "type" field'), {});
  }
  const obj = value as Record<string, unknown>;
  const correlation: Correlation = {};
  if (typeof obj.ref === "string" && obj.ref.length <= 128) correlation.ref = obj.ref;
  if (typeof obj.id === "string" && obj.id.length <= 64) correlation.id = obj.id;
  const type = obj.type;
  if (typeof type !== "string") {
    throw new FrameError(new TaskwireError("bad_request", 'type: required string; one of "submit", "subscribe", "cancel"'), correlation);
  }
  if (!Object.hasOwn(clientFrameSchemas, type)) {
    throw new FrameError(new TaskwireError("unknown_type", `type: unknown ${JSON.stringify(type.slice(0, 32))}; use "submit", "subscribe" or "cancel"`), correlation);
  }
  if (type === "submit" && isPlainSubmit(obj)) return obj as ClientFrame;
  const parsed = clientFrameSchemas[type as keyof typeof clientFrameSchemas].safeParse(obj);
  if (!parsed.success) {
    const issues = fromZodIssues(parsed.error.issues);
    const fields = issues.map((i) => `${i.path.join(".") || "frame"}: ${i.message}`).join("; ");
    throw new FrameError(new TaskwireError("bad_request", `invalid ${type} frame: ${fields}`, issues), correlation);
  }
  return parsed.data as ClientFrame;
}

/**
 * The common submit, checked by hand: a frame clientFrameSchemas.submit accepts as it is (its own keys, no
 * `options`). Every submit passes here, and at 1,000 tasks/s the schema's code, run cold between wakes,
 * cost the server several µs per task; anything else goes to the schema, which words the errors.
 * tests/protocol.test.ts holds the two to the same answers.
 */
export function isPlainSubmit(o: Record<string, unknown>): boolean {
  const { ref, task, args, key } = o;
  return typeof ref === "string" && ref.length <= 128 && typeof task === "string" && task.length >= 1 && task.length <= 128 &&
    (args === undefined || isPlainRecord(args)) && (key === undefined || (typeof key === "string" && key.length >= 1 && key.length <= 256)) &&
    o.options === undefined;
}

/** A JSON object (not an array) whose keys the schema would copy as they are: no own `__proto__`, which it drops. */
function isPlainRecord(v: unknown): boolean {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !Object.hasOwn(v, "__proto__");
}

// --- server frames (/ws) ---

export function acceptedFrame(ref: string, taskId: string): string {
  return `{"type":"accepted","ref":${JSON.stringify(ref)},"id":"${taskId}"}`;
}

export function errorFrame(err: WireError, c: Correlation = {}): string {
  return JSON.stringify({ type: "error", ...(c.ref !== undefined ? { ref: c.ref } : {}), ...(c.id !== undefined ? { id: c.id } : {}), error: err });
}

export function stateFrame(taskId: string, state: string): string {
  return JSON.stringify({ type: "state", id: taskId, state });
}

// --- seed frames (/async_task/) ---

/** Python's json.dumps layout (", " and ": "), as the original Django view sent; non-ASCII kept as UTF-8. */
export function pyDumps(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (Array.isArray(v)) return `[${v.map(pyDumps).join(", ")}]`;
  if (typeof v === "object") {
    return `{${Object.entries(v as Record<string, unknown>).map(([k, x]) => `${JSON.stringify(k)}: ${pyDumps(x)}`).join(", ")}}`;
  }
  return JSON.stringify(v) ?? "null";
}
