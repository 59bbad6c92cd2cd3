/** GET /healthz: 200 when Redis answers a PING within a second, 503 otherwise. Never needs the token. */
import type { RequestContext } from "../lib/router.ts";

export async function fetch(_req: Request, { app }: RequestContext): Promise<Response> {
  try {
    const pong = await Promise.race([app.redis.ping(), Bun.sleep(1000).then(() => "timeout")]);
    if (pong === "PONG") return Response.json({ ok: true, redis: "up" });
  } catch {}
  return Response.json({ ok: false, redis: "down" }, { status: 503 });
}
