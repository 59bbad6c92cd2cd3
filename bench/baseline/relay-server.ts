/**
 * The relay floor's server: the fewest hops any design of server + Redis list + worker + pub/sub pays per
 * task, with nothing taskwire adds (no stored task, no event log, no acknowledgement awaited). A submit
 * is answered `accepted` at once and pushed as "<inbox> <id> <args>" with replies off; the worker's result
 * comes back on this process's inbox channel. `bun run bench --stack relay` reads taskwire against it.
 * RELAY_STORED=1 (`--stack relay-stored`) adds the least that "losing nothing" asks of this server: the
 * task is stored with its queue entry (one script) and `accepted` waits for that reply; a result heard
 * before its `accepted` went out waits for it.
 */
import { pyDumps } from "../../lib/protocol.ts";
import { connectResp, type Reply } from "./resp.ts";
import { QUEUE, STORED, STORE_TASK_LUA, redisUrl, taskKey } from "./relay.ts";
import { serveProtocol, type Sock } from "./serve.ts";

const INBOX = `relay:inbox:${process.pid}`;

interface Waiting {
  ws: Sock;
  /** Stored mode: whether the `accepted` (or running row) went out; a result waits for it. */
  answered: boolean;
  result?: string;
}
const waiting = new Map<string, Waiting>();
let next = 0;

function deliver(id: string, result: string): void {
  const w = waiting.get(id);
  if (!w) return;
  if (!w.answered) return void (w.result = result);
  waiting.delete(id);
  if (!w.ws.data.seed) return void w.ws.send(`{"type":"result","id":"${id}","result":${result}}`);
  w.ws.send(pyDumps({ msg: "success", flag: true, data: { result: JSON.parse(result) } }));
  w.ws.close(1000);
}

let subscribed!: () => void;
const ready = new Promise<void>((resolve) => (subscribed = resolve));
const sub = await connectResp(redisUrl(), (r: Reply) => {
  if (!Array.isArray(r)) return;
  if (r[0] === "message") {
    const m = r[2] as string;
    const at = m.indexOf(" ");
    deliver(m.slice(0, at), m.slice(at + 1));
  } else if (r[0] === "subscribe") subscribed();
});
sub.send([["SUBSCRIBE", INBOX]]);
await ready;

// Stored mode: replies on, answered in the order sent; the first is SCRIPT LOAD's.
const replies: ((r: Reply) => void)[] = [];
const push = await connectResp(redisUrl(), (r) => replies.shift()?.(r));
let storeSha = "";
if (STORED) {
  const loaded = new Promise<void>((resolve) => replies.push((sha) => ((storeSha = String(sha)), resolve())));
  push.send([["SCRIPT", "LOAD", STORE_TASK_LUA]]);
  await loaded;
} else push.send([["CLIENT", "REPLY", "OFF"]]);

/** Queues a task; `answer` sends its first frame: at once, or (stored) once Redis has stored it. */
function enqueue(ws: Sock, args: string, answer: (id: string) => void): void {
  const id = String(++next);
  const w: Waiting = { ws, answered: !STORED };
  waiting.set(id, w);
  const message = `${INBOX} ${id} ${args}`;
  if (!STORED) {
    push.send([["LPUSH", QUEUE, message]]);
    return answer(id);
  }
  push.send([["EVALSHA", storeSha, 2, taskKey(id), QUEUE, message, args, INBOX]]);
  replies.push(() => {
    answer(id);
    w.answered = true;
    if (w.result !== undefined) deliver(id, w.result);
  });
}

serveProtocol(`relay floor server${STORED ? " (stored)" : ""}`, (ws, raw) => {
  const f = JSON.parse(raw) as { ref?: string; args?: unknown; task_id?: unknown };
  if (!ws.data.seed) {
    return enqueue(ws, JSON.stringify(f.args ?? {}), (id) => ws.send(`{"type":"accepted","ref":${JSON.stringify(f.ref)},"id":"${id}"}`));
  }
  if (ws.data.started) return;
  ws.data.started = true;
  enqueue(ws, JSON.stringify({ task_id: f.task_id }), (id) => ws.send(pyDumps({ msg: `task ${f.task_id} is running...`, flag: true, id })));
});
process.on("SIGTERM", () => process.exit(0));
