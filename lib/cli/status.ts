/** `taskwire status <id>`: a task's state (GET /tasks/<id>) as JSON; with --wait, follows it to the end first. */
import { CONNECTION_FLAGS, CONNECTION_HELP, EXIT, connection, getJson, parseFlags, printJson, out, oneTaskId } from "./common.ts";
import { follow } from "./follow.ts";
import { makeProgress } from "./progress.ts";
import { report } from "./submit.ts";

export const HELP = `Usage: taskwire status <id> [--wait] [flags]

Prints the task's state as JSON (GET /tasks/<id>): id, task, state (queued|running|succeeded|failed|cancelled),
result or error, last progress.

  --wait           follow the task to its end first (progress on stderr); exit as \`taskwire submit\` does
${CONNECTION_HELP}

Exit: 0 printed (or with --wait: succeeded), 1 with --wait: failed or cancelled, 2 bad usage,
3 server unreachable / token refused, 4 no such task (unknown, or expired after RESULT_TTL_S).
`;

const FINAL = ["succeeded", "failed", "cancelled"];

export async function run(argv: string[]): Promise<number> {
  const p = parseFlags("status", argv, { ...CONNECTION_FLAGS, wait: { type: "boolean" } });
  if (p.flags.help) {
    out(HELP);
    return EXIT.ok;
  }
  const id = oneTaskId(p, "status");
  const c = connection(p);
  const info = await getJson<Record<string, unknown>>(c, `/tasks/${encodeURIComponent(id)}`);
  if (!p.flags.wait) {
    printJson(info);
    return EXIT.ok;
  }
  if (!FINAL.includes(String(info.state))) {
    const progress = makeProgress(String(info.task ?? id), { quiet: false });
    const outcome = await follow(c, { watch: { id } }, { progress });
    progress.end();
    if (outcome.frame?.type === "error") return report(outcome, progress);
  }
  const final = await getJson<Record<string, unknown>>(c, `/tasks/${encodeURIComponent(id)}`);
  printJson(final);
  return final.state === "failed" || final.state === "cancelled" ? EXIT.taskFailed : EXIT.ok;
}
