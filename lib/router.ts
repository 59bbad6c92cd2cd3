/**
 * Path -> view. A view is a module in views/ exporting hooks: `fetch` for HTTP, and `upgrade`, `open`,
 * `message`, `close`, `drain` for WebSockets. The router resolves the view once at upgrade and keeps it
 * in ws.data, so the shared `websocket` object only dispatches.
 */
import type { Server, ServerWebSocket, WebSocketHandler } from "bun";
import type { App } from "./app.ts";
import { checkAccess } from "./auth.ts";
import { TaskwireError, toWireError } from "./errors.ts";

export interface RequestContext {
  app: App;
  server: Server<SocketData>;
  url: URL;
  /** The path below the view's route, without leading or trailing slashes ("" for the route itself). */
  rest: string;
}

export interface SocketData<S = unknown> {
  view: View;
  app: App;
  state: S;
}

export type Socket<S = unknown> = ServerWebSocket<SocketData<S>>;

export interface View {
  fetch?(req: Request, ctx: RequestContext): Response | Promise<Response>;
  /** Per-socket state to upgrade with, or a Response to refuse the upgrade. */
  upgrade?(req: Request, ctx: RequestContext): unknown;
  open?(ws: Socket<any>): void;
  message?(ws: Socket<any>, data: string | Buffer): void;
  close?(ws: Socket<any>, code: number, reason: string): void;
  drain?(ws: Socket<any>): void;
  /** Its own answer to a request refused for want of the token (the dashboard's HTML 401 page), or undefined for the JSON 401. */
  unauthorized?(req: Request, rest: string): Response | undefined;
}

export function errorResponse(err: unknown, app: App): Response {
  const wire = toWireError(err, (m, e) => app.log.error(m, e));
  const status = err instanceof TaskwireError ? err.status : wire.code === "unavailable" ? 503 : 500;
  // 429 (rate_limited, limit_exceeded): a bucket refills within a second.
  return Response.json({ error: wire }, { status, headers: status === 429 ? { "retry-after": "1" } : undefined });
}

export function notFound(what = "no such route"): Response {
  return Response.json({ error: { code: "not_found", message: what } }, { status: 404 });
}

export function createRouter(app: App, routes: Record<string, View>) {
  const names = Object.keys(routes).sort((a, b) => b.length - a.length); // longest route first

  function resolve(pathname: string): { view: View; rest: string } | undefined {
    const path = pathname.replace(/^\/+|\/+$/g, "");
    if (path === "") return routes.index ? { view: routes.index, rest: "" } : undefined;
    for (const name of names) {
      if (name === "index") continue;
      if (path === name) return { view: routes[name]!, rest: "" };
      if (path.startsWith(name + "/")) return { view: routes[name]!, rest: path.slice(name.length + 1) };
    }
    return routes.index ? { view: routes.index, rest: path } : undefined;
  }

  async function fetch(req: Request, server: Server<SocketData>): Promise<Response | undefined> {
    const url = new URL(req.url);
    const hit = resolve(url.pathname);
    // Auth before the 404, so a caller without the token learns nothing about which routes exist.
    const refused = checkAccess(req, url, app.config, hit !== undefined && hit.view === routes.healthz);
    if (refused) return (refused.status === 401 && hit?.view.unauthorized?.(req, hit.rest)) || refused;
    if (!hit) return notFound();
    const ctx: RequestContext = { app, server, url, rest: hit.rest };
    const { view } = hit;
    try {
      if (req.headers.get("upgrade")?.toLowerCase() === "websocket") {
        if (!view.upgrade || hit.rest !== "") return notFound("no WebSocket endpoint here");
        if (app.sockets.size >= app.config.MAX_SOCKETS) return socketsFull(app.config.MAX_SOCKETS);
        const state = await view.upgrade(req, ctx);
        if (state instanceof Response) return state;
        // Again after the await, when other upgrades may have opened: Bun calls open() inside server.upgrade(),
        // so from here to the socket being counted nothing else runs, and the limit holds exactly.
        if (app.sockets.size >= app.config.MAX_SOCKETS) return socketsFull(app.config.MAX_SOCKETS);
        if (server.upgrade(req, { data: { view, app, state } })) return undefined;
        return Response.json({ error: { code: "bad_request", message: "WebSocket upgrade failed" } }, { status: 400 });
      }
      if (!view.fetch) return notFound();
      return await view.fetch(req, ctx);
    } catch (err) {
      return errorResponse(err, app);
    }
  }

  const websocket: WebSocketHandler<SocketData> = {
    open(ws) {
      app.sockets.add(ws);
      ws.data.view.open?.(ws);
    },
    message(ws, data) {
      ws.data.view.message?.(ws, data);
    },
    close(ws, code, reason) {
      app.sockets.delete(ws);
      ws.data.view.close?.(ws, code, reason);
    },
    drain(ws) {
      ws.data.view.drain?.(ws);
    },
    maxPayloadLength: app.config.MAX_PAYLOAD_BYTES,
    idleTimeout: app.config.IDLE_TIMEOUT_S,
    sendPings: true,
    // Bun buffers past this, and we coalesce long before; closing here is the last resort.
    backpressureLimit: Math.max(app.config.SEND_HIGH_WATER_BYTES * 16, 16 * 1024 * 1024),
    closeOnBackpressureLimit: true,
    perMessageDeflate: false,
  };

  return { fetch, websocket, resolve };
}

function socketsFull(max: number): Response {
  return Response.json(
    { error: { code: "limit_exceeded", message: `this server already holds ${max} sockets (MAX_SOCKETS); retry later or on another server` } },
    { status: 503, headers: { "retry-after": "1" } },
  );
}
