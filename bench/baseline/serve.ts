/**
 * The HTTP side both comparison servers share: Bun.serve on 127.0.0.1:$PORT with /healthz and the /ws and
 * /async_task/ upgrades, handing each frame on with which endpoint it came in on.
 */
import type { ServerWebSocket } from "bun";

export interface Conn {
  /** Came in on /async_task/ (the seed endpoint: one task, Python-style rows, close 1000). */
  seed: boolean;
  started?: boolean;
}
export type Sock = ServerWebSocket<Conn>;

export function serveProtocol(name: string, message: (ws: Sock, raw: string) => void) {
  const server = Bun.serve<Conn>({
    hostname: "127.0.0.1",
    port: Number(process.env.PORT ?? 8000),
    fetch(req, srv) {
      const path = new URL(req.url).pathname;
      if (path === "/healthz") return new Response("ok");
      if ((path === "/ws" || path === "/async_task/") && srv.upgrade(req, { data: { seed: path === "/async_task/" } })) return;
      return new Response("not found", { status: 404 });
    },
    websocket: { message: (ws, msg) => message(ws, String(msg)) },
  });
  console.log(`${name} on ${server.url}`);
  return server;
}
