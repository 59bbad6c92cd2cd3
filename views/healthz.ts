/**
 * GET /healthz: 200 when Redis answers a PING within a second and the event subscription is connected,
 * 503 otherwise (a server that cannot hear events cannot deliver them). Never needs the token.
 */
import type { RequestContext } from "../lib/router.ts";

const PING_TIMEOUT_MS = 1_000;

export async function fetch(_req: Request, { app }: RequestContext): Promise<Response> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const timeout = new Promise<string>((resolve) => (timer = setTimeout(() => resolve("timeout"), PING_TIMEOUT_MS)));
    const pong = await Promise.race([app.redis.ping(), timeout]);
    if (pong === "PONG" && app.subscriber.status === "ready" && (app.inbox?.status ?? "ready") === "ready") return Response.json({ ok: true, redis: "up" });
  } catch {
    // unreachable: answered below
  } finally {
    clearTimeout(timer);
  }
  return Response.json({ ok: false, redis: "down" }, { status: 503 });
}
