/**
 * The bench's floor: a Bun.serve that answers each `/ws` submit at once with `accepted` and its `result`
 * (and the `/async_task/` frames), with no Redis and no worker. `bun run bench --stack echo` measures what
 * the load generator and loopback alone cost, so a figure of taskwire's can be read against it.
 */
import { pyDumps } from "../../lib/protocol.ts";
import { serveProtocol } from "./serve.ts";

let next = 0;
serveProtocol("echo server", (ws, raw) => {
  const f = JSON.parse(raw) as { ref?: string; args?: { task_id?: unknown }; task_id?: unknown };
  const id = String(++next);
  if (ws.data.seed) {
    ws.send(pyDumps({ msg: `task ${f.task_id} is running...`, flag: true, id }));
    ws.send(pyDumps({ msg: "success", flag: true, data: { result: f.task_id } }));
    return void ws.close(1000);
  }
  ws.cork(() => {
    ws.send(JSON.stringify({ type: "accepted", ref: f.ref, id }));
    ws.send(JSON.stringify({ type: "result", id, result: f.args?.task_id }));
  });
});
process.on("SIGTERM", () => process.exit(0));
