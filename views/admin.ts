/**
 * GET /admin (WebSocket): the dashboard's live feed. Each socket gets a snapshot on open, then one a
 * second on the "admin" topic (see lib/dashboard-feed.ts). Messages from the page are ignored.
 */
import { adminFeed } from "../lib/dashboard-feed.ts";
import type { RequestContext, Socket } from "../lib/router.ts";

export function upgrade(_req: Request, _ctx: RequestContext): Record<string, never> {
  return {};
}

export function open(ws: Socket): void {
  adminFeed(ws.data.app).join(ws);
}

export function close(ws: Socket): void {
  adminFeed(ws.data.app).leave(ws);
}
