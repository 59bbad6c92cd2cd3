/**
 * The bench's floor: a Bun.serve that answers each `/ws` submit at once with `accepted` and its `result`
 * (and the `/async_task/` frames), with no Redis and no worker. `bun run bench --stack echo` measures what
 * the load generator and loopback alone cost, so a figure of taskwire's can be read against it.
 */
import { pyDumps } from "../../lib/protocol.ts";

let next = 0;
const server = Bun.serve<{ seed: boolean }>({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 8000),
  fetch(req, srv) {
    const path = new URL(req.url).pathname;
    if (path === "/healthz") return new Response("ok");
    if ((path === "/ws" || path === "/async_task/") && srv.upgrade(req, { data: { seed: path === "/async_task/" } })) return;
    return new Response("not found", { status: 404 });
  },
  websocket: {
    message(ws, msg) {
      const f = JSON.parse(String(msg)) as { ref?: string; args?: { task_id?: unknown }; task_id?: unknown };
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
    },
  },
});
console.log(`echo server on ${server.url}`);
process.on("SIGTERM", () => process.exit(0));
