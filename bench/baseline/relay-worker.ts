/**
 * The relay floor's worker: pops up to 64 messages per BLMPOP, runs `test_task` (returns args.task_id), and
 * sends each result's PUBLISH (its reply skipped) and the next BLMPOP in one write, so a task wakes this
 * process once and Redis once. See relay-server.ts. RELAY_STORED=1: each outcome is stored as taskwire's
 * is (the task's state and result, an event log entry, TTLs) by one script before its PUBLISH. Its reply
 * is skipped too: Redis runs one connection's commands in order, so the next BLMPOP's reply says it ran.
 */
import { connectResp, type Reply } from "./resp.ts";
import { QUEUE, STORED, STORE_OUTCOME_LUA, eventsKey, redisUrl, split3, taskKey } from "./relay.ts";

const POP = ["BLMPOP", 0, 1, QUEUE, "RIGHT", "COUNT", 64];
let outcomeSha = "";

const conn = await connectResp(redisUrl(), (r: Reply) => {
  if (!Array.isArray(r)) {
    outcomeSha = String(r); // SCRIPT LOAD's reply, the first and only one that is not a pop
    return conn.send([POP]);
  }
  const popped = r[1] as string[];
  const commands: (string | number)[][] = [];
  for (const m of popped) {
    const [inbox, id, args] = split3(m);
    const result = JSON.stringify((JSON.parse(args) as { task_id?: unknown }).task_id ?? null);
    commands.push(["CLIENT", "REPLY", "SKIP"], STORED
      ? ["EVALSHA", outcomeSha, 2, taskKey(id), eventsKey(id), inbox, id, result]
      : ["PUBLISH", inbox, `${id} ${result}`]);
  }
  commands.push(POP);
  conn.send(commands);
});
conn.send([STORED ? ["SCRIPT", "LOAD", STORE_OUTCOME_LUA] : POP]);
console.log(`relay floor worker${STORED ? " (stored)" : ""}: taking tasks`);
process.on("SIGTERM", () => process.exit(0));
