/**
 * The relay floor's server: the fewest hops any design of server + Redis list + worker + pub/sub pays per
 * task, with nothing taskwire adds (no stored task, no event log, no acknowledgement awaited). A submit
 * is answered `accepted` at once and pushed as "<inbox> <id> <args>" with replies off; the worker's result
 * comes back on this process's inbox channel. `bun run bench --stack relay` reads taskwire against it.
 */
import { pyDumps } from "../../lib/protocol.ts";
import { connectResp, type Reply } from "./resp.ts";
import { QUEUE, redisUrl } from "./relay.ts";
import { serveProtocol, type Sock } from "./serve.ts";

const INBOX = `relay:inbox:${process.pid}`;
const waiting = new Map<string, Sock>();
let next = 0;

function deliver(message: string): void {
  const at = message.indexOf(" ");
  const id = message.slice(0, at);
  const result = message.slice(at + 1);
  const ws = waiting.get(id);
  if (!ws) return;
  waiting.delete(id);
  if (!ws.data.seed) return void ws.send(`{"type":"result","id":"${id}","result":${result}}`);
  ws.send(pyDumps({ msg: "success", flag: true, data: { result: JSON.parse(result) } }));
  ws.close(1000);
}

let subscribed!: () => void;
const ready = new Promise<void>((resolve) => (subscribed = resolve));
const sub = await connectResp(redisUrl(), (r: Reply) => {
  if (!Array.isArray(r)) return;
  if (r[0] === "message") deliver(r[2] as string);
  else if (r[0] === "subscribe") subscribed();
});
sub.send([["SUBSCRIBE", INBOX]]);
await ready;
const push = await connectResp(redisUrl(), () => {});
push.send([["CLIENT", "REPLY", "OFF"]]);

function enqueue(ws: Sock, args: string): string {
  const id = String(++next);
  waiting.set(id, ws);
  push.send([["LPUSH", QUEUE, `${INBOX} ${id} ${args}`]]);
  return id;
}

serveProtocol("relay floor server", (ws, raw) => {
  const f = JSON.parse(raw) as { ref?: string; args?: unknown; task_id?: unknown };
  if (!ws.data.seed) {
    const id = enqueue(ws, JSON.stringify(f.args ?? {}));
    return void ws.send(`{"type":"accepted","ref":${JSON.stringify(f.ref)},"id":"${id}"}`);
  }
  if (ws.data.started) return;
  ws.data.started = true;
  const id = enqueue(ws, JSON.stringify({ task_id: f.task_id }));
  ws.send(pyDumps({ msg: `task ${f.task_id} is running...`, flag: true, id }));
});
process.on("SIGTERM", () => process.exit(0));
