/** `taskwire cancel <id>`: DELETE /tasks/<id>; prints the server's answer ({"id", "state"}) as JSON. */
import { CONNECTION_FLAGS, CONNECTION_HELP, CliError, EXIT, connection, describeError, parseFlags, printJson, request, out, oneTaskId } from "./common.ts";

export const HELP = `Usage: taskwire cancel <id> [flags]

Cancels a queued or running task (DELETE /tasks/<id>); a finished task stays as it ended.

${CONNECTION_HELP}

Exit: 0 cancel requested, 2 bad usage, 3 server unreachable / token refused, 4 no such task.
`;

export async function run(argv: string[]): Promise<number> {
  const p = parseFlags("cancel", argv, CONNECTION_FLAGS);
  if (p.flags.help) {
    out(HELP);
    return EXIT.ok;
  }
  const id = oneTaskId(p, "cancel");
  const c = connection(p);
  const res = await request(c, "DELETE", `/tasks/${encodeURIComponent(id)}`);
  if (res.status === 404) throw new CliError(EXIT.notFound, await describeError(res));
  if (!res.ok) throw new CliError(EXIT.unreachable, `DELETE /tasks/${id}: ${await describeError(res)}`);
  printJson(await res.json());
  return EXIT.ok;
}
