/**
 * The relay floor's worker: pops up to 64 messages per BLMPOP, runs `test_task` (returns args.task_id), and
 * sends each result's PUBLISH (its reply skipped) and the next BLMPOP in one write, so a task wakes this
 * process once and Redis once. See relay-server.ts.
 */
import { connectResp, type Reply } from "./resp.ts";
import { QUEUE, redisUrl, split3 } from "./relay.ts";

const POP = ["BLMPOP", 0, 1, QUEUE, "RIGHT", "COUNT", 64];

const conn = await connectResp(redisUrl(), (r: Reply) => {
  const popped = ((r as Reply[])[1] as string[]);
  const commands: (string | number)[][] = [];
  for (const m of popped) {
    const [inbox, id, args] = split3(m);
    const result = JSON.stringify((JSON.parse(args) as { task_id?: unknown }).task_id ?? null);
    commands.push(["CLIENT", "REPLY", "SKIP"], ["PUBLISH", inbox, `${id} ${result}`]);
  }
  commands.push(POP);
  conn.send(commands);
});
conn.send([POP]);
console.log("relay floor worker: taking tasks");
process.on("SIGTERM", () => process.exit(0));
