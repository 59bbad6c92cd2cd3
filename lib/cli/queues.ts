/** `taskwire queues`: queue depth (waiting, delayed for retry, running, dead) and fleet capacity, from GET /queues. */
import { CONNECTION_FLAGS, CONNECTION_HELP, EXIT, connection, getJson, parseFlags, printJson, table, out, noArguments } from "./common.ts";

export const HELP = `Usage: taskwire queues [--json] [flags]

Shows each queue: tasks waiting, delayed for a retry, running now, in the dead-letter list; and the
workers and slots (sum of their concurrency) serving them.

  --json           the raw GET /queues document instead of a table
${CONNECTION_HELP}

Exit: 0 shown, 2 bad usage, 3 server unreachable / token refused.
`;

interface QueuesDoc {
  queues: { name: string; queued: number; delayed: number; running: number; dead: number }[];
  workers: number;
  slots: number;
}

export async function run(argv: string[]): Promise<number> {
  const p = parseFlags("queues", argv, { ...CONNECTION_FLAGS, json: { type: "boolean" } });
  if (p.flags.help) {
    out(HELP);
    return EXIT.ok;
  }
  noArguments(p, "queues");
  const doc = await getJson<QueuesDoc>(connection(p), "/queues");
  if (p.flags.json) {
    printJson(doc);
    return EXIT.ok;
  }
  out(table(
    ["QUEUE", "QUEUED", "DELAYED", "RUNNING", "DEAD", "WORKERS", "SLOTS"],
    doc.queues.map((q) => [q.name, q.queued, q.delayed, q.running, q.dead, doc.workers, doc.slots]),
  ));
  return EXIT.ok;
}
