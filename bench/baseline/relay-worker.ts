/**
 * The relay floor's worker: pops up to 64 messages per BLMPOP, runs `test_task` (returns args.task_id), and
 * sends each result's PUBLISH (its reply skipped) and the next BLMPOP in one write, so a task wakes this
 * process once and Redis once. See relay-server.ts. RELAY_STORED=1: each outcome is stored as taskwire's
 * is (the task's state and result, an event log entry, TTLs) by one script before its PUBLISH. Its reply
 * is skipped too: Redis runs one connection's commands in order, so the next BLMPOP's reply says it ran.
 * RELAY_CLAIMED=1 (with stored): what was popped is claimed first (CLAIM_LUA), in one write, and runs
 * once those replies are in, with the args the claim read: the round trip taskwire's start costs.
 */
import { connectResp, type Reply } from "./resp.ts";
import { CLAIMED, CLAIM_LUA, QUEUE, STORED, STORE_OUTCOME_LUA, eventsKey, redisUrl, split3, taskKey } from "./relay.ts";

const POP = ["BLMPOP", 0, 1, QUEUE, "RIGHT", "COUNT", 64];
const WORKER = `relay-${process.pid}`;
const shas: string[] = [];
/** The SCRIPT LOADs sent first (outcome, claim): their replies come before any pop's. */
const SCRIPTS = CLAIMED ? 2 : STORED ? 1 : 0;
/** Claimed mode: the popped tasks whose claim replies are still to come ([inbox, id]), and those in. */
let claiming: [string, string][] = [];
let claimed: [string, string, Reply][] = [];

const conn = await connectResp(redisUrl(), (r: Reply) => {
  if (shas.length < SCRIPTS) {
    shas.push(String(r));
    if (shas.length === SCRIPTS) conn.send([POP]);
    return;
  }
  if (claiming.length > 0) {
    const [inbox, id] = claiming[claimed.length]!;
    claimed.push([inbox, id, r]);
    if (claimed.length < claiming.length) return;
    const done = claimed.filter(([, , args]) => args !== null).map(([inbox, id, args]) => [inbox, id, String(args)] as const);
    claiming = [];
    claimed = [];
    return conn.send([...done.flatMap(([inbox, id, args]) => outcome(inbox, id, args)), POP]);
  }
  const popped = ((r as Reply[])[1] as string[]).map(split3);
  if (CLAIMED) {
    claiming = popped.map(([inbox, id]) => [inbox, id]);
    return conn.send(claiming.map(([, id]) => ["EVALSHA", shas[1]!, 1, taskKey(id), WORKER]));
  }
  conn.send([...popped.flatMap(([inbox, id, args]) => outcome(inbox, id, args)), POP]);
});

/** Runs test_task on `args` and returns the commands that deliver (stored mode: store) its result. */
function outcome(inbox: string, id: string, args: string): (string | number)[][] {
  const result = JSON.stringify((JSON.parse(args) as { task_id?: unknown }).task_id ?? null);
  return [["CLIENT", "REPLY", "SKIP"], STORED
    ? ["EVALSHA", shas[0]!, 2, taskKey(id), eventsKey(id), inbox, id, result]
    : ["PUBLISH", inbox, `${id} ${result}`]];
}

if (STORED) conn.send([["SCRIPT", "LOAD", STORE_OUTCOME_LUA], ...(CLAIMED ? [["SCRIPT", "LOAD", CLAIM_LUA]] : [])]);
else conn.send([POP]);
console.log(`relay floor worker${CLAIMED ? " (stored, claimed)" : STORED ? " (stored)" : ""}: taking tasks`);
process.on("SIGTERM", () => process.exit(0));
