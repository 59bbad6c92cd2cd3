/** `taskwire submit <task> --args '{...}'`: runs a task over /ws, progress on stderr, the result as JSON on stdout. */
import { existsSync, readFileSync } from "node:fs";
import { CONNECTION_FLAGS, CONNECTION_HELP, CliError, EXIT, connection, parseFlags, str, usage, out } from "./common.ts";
import { follow, refusal } from "./follow.ts";
import { makeProgress } from "./progress.ts";

export const HELP = `Usage: taskwire submit <task> [--args '<json object>'] [--key <k>] [flags]

Submits a task over the /ws WebSocket and follows it: a live progress bar on stderr (plain lines when
stderr is not a terminal), then the result as JSON on stdout. Reconnects and resumes if the connection drops.

  --args <json>    the task's args as a JSON object (default {}); @file reads it from a file
  --key <k>        idempotency key: a second submit with the same key runs nothing and follows the first task
  --detach         print {"id": ...} once accepted and exit 0 without waiting
  --timeout <s>    stop waiting after <s> seconds (exit 5; the task keeps running)
  -q, --quiet      no progress on stderr
${CONNECTION_HELP}

Exit: 0 result printed, 1 task failed or cancelled, 2 bad input (flags, --args, unknown task, invalid args),
3 server unreachable / token refused / unavailable, 5 --timeout passed, 130 Ctrl-C (the task keeps running).

Example:
  taskwire submit countdown --args '{"steps": 5, "interval_ms": 200}'
`;

const FLAGS = {
  ...CONNECTION_FLAGS,
  args: { type: "string" },
  key: { type: "string" },
  detach: { type: "boolean" },
  timeout: { type: "string" },
  quiet: { type: "boolean", short: "q" },
} as const;

/** --args as an object, or a usage error that names --args and shows the shape wanted. */
export function parseArgsJson(raw: string | undefined): Record<string, unknown> {
  if (raw === undefined) return {};
  let text = raw;
  if (raw.startsWith("@")) {
    const file = raw.slice(1);
    if (!existsSync(file)) throw usage(`--args ${raw}: no file ${JSON.stringify(file)}; pass a JSON object or @<existing file>`);
    text = readFileSync(file, "utf8");
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw usage(`--args is not valid JSON (${(err as Error).message}); pass an object in single quotes, e.g. --args '{"steps": 3}'`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw usage(`--args must be a JSON object, got ${Array.isArray(v) ? "an array" : v === null ? "null" : typeof v}; e.g. --args '{"steps": 3}'`);
  }
  return v as Record<string, unknown>;
}

export async function run(argv: string[]): Promise<number> {
  const p = parseFlags("submit", argv, FLAGS);
  if (p.flags.help) {
    out(HELP);
    return EXIT.ok;
  }
  const [task, extra] = p.positionals;
  if (!task) throw usage(`missing the task name; e.g. taskwire submit countdown --args '{"steps": 3}'`);
  if (extra !== undefined) throw usage(`unexpected argument ${JSON.stringify(extra)}; task args go in --args '{...}' as one JSON object`);
  const args = parseArgsJson(str(p, "args"));
  const key = str(p, "key");
  if (key !== undefined && (key.length === 0 || key.length > 256)) throw usage("--key must be 1 to 256 characters");
  const rawTimeout = str(p, "timeout");
  const timeoutS = rawTimeout === undefined ? undefined : Number(rawTimeout);
  if (timeoutS !== undefined && !(Number.isFinite(timeoutS) && timeoutS > 0)) throw usage(`--timeout ${JSON.stringify(rawTimeout)}: use a number of seconds above 0, e.g. --timeout 30`);
  const c = connection(p);
  const progress = makeProgress(task, { quiet: Boolean(p.flags.quiet) || Boolean(p.flags.detach) });

  let id: string | undefined;
  const leave = (exit: number, why: string) => {
    progress.end();
    process.stderr.write(`${why}${id ? `; task ${id} keeps running (taskwire status ${id})` : ""}\n`);
    process.exit(exit);
  };
  process.once("SIGINT", () => leave(EXIT.interrupted, "interrupted"));
  if (timeoutS !== undefined) setTimeout(() => leave(EXIT.timeout, `no result within --timeout ${timeoutS} s`), timeoutS * 1000).unref();

  const outcome = await follow(c, { submit: { task, args, ...(key !== undefined ? { key } : {}) } }, {
    progress,
    detach: Boolean(p.flags.detach),
    onId(got) {
      id = got;
      progress.note(`${task}: accepted as ${got}`);
    },
  });
  return report(outcome, progress);
}

/** Prints a followed task's outcome: result JSON to stdout, anything else to stderr; returns the exit code. */
export function report(outcome: Awaited<ReturnType<typeof follow>>, progress: { end(): void }): number {
  progress.end();
  const f = outcome.frame;
  if (!f) {
    if (outcome.id) out(`${JSON.stringify({ id: outcome.id })}\n`);
    return outcome.exit;
  }
  if (f.type === "result") out(`${JSON.stringify(f.result ?? null)}\n`);
  else if (f.type === "failed") process.stderr.write(`task ${outcome.id} failed (${f.error?.code ?? "task_error"}): ${f.error?.message ?? ""}\n`);
  else if (f.type === "cancelled") process.stderr.write(`task ${outcome.id} was cancelled\n`);
  else if (f.type === "error") throw new CliError(outcome.exit, refusal(f.error ?? {}));
  return outcome.exit;
}
