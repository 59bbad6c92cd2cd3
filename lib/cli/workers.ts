/** `taskwire workers`: the live workers (GET /workers) as a table, or JSON with --json. */
import { connection, CONNECTION_FLAGS, CONNECTION_HELP, EXIT, getJson, out, parseFlags, printJson, table, noArguments } from "./common.ts";

export const HELP = `Usage: taskwire workers [--json] [flags]

Lists the workers whose heartbeat is fresh: id, host, pid, concurrency, tasks running now.

  --json           the raw GET /workers document instead of a table
${CONNECTION_HELP}

Exit: 0 listed (even when empty), 2 bad usage, 3 server unreachable / token refused.
`;

interface WorkerRow {
  id: string;
  host: string;
  pid: number;
  concurrency: number;
  started: number;
  last_seen: number;
  running: { id: string; task: string }[];
}

export async function run(argv: string[]): Promise<number> {
  const p = parseFlags("workers", argv, { ...CONNECTION_FLAGS, json: { type: "boolean" } });
  if (p.flags.help) {
    out(HELP);
    return EXIT.ok;
  }
  noArguments(p, "workers");
  const workers = await getJson<WorkerRow[]>(connection(p), "/workers");
  if (p.flags.json) {
    printJson(workers);
    return EXIT.ok;
  }
  const now = Date.now();
  out(table(
    ["ID", "HOST", "PID", "RUNNING", "UP", "SEEN", "TASKS"],
    workers.map((w) => [
      w.id, w.host, w.pid, `${w.running.length}/${w.concurrency}`, ago(now - w.started), `${ago(now - w.last_seen)} ago`,
      w.running.map((r) => `${r.task}:${r.id.slice(-8)}`).join(" ") || "-",
    ]),
  ));
  if (workers.length === 0) process.stderr.write("no live workers: start one with `taskwire worker`\n");
  return EXIT.ok;
}

function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
}
