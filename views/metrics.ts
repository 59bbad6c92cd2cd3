/** GET /metrics: Prometheus text format; fleet-wide counters from Redis, latency and sockets from this server. */
import { listWorkers, queueGauges } from "../lib/fleet.ts";
import { outboxMetrics } from "../lib/outbox.ts";
import type { RequestContext } from "../lib/router.ts";

export async function fetch(_req: Request, { app }: RequestContext): Promise<Response> {
  const [g, workers] = await Promise.all([queueGauges(app), listWorkers(app)]);
  const body = app.metrics.render({
    stats: g.stats, queueDepth: g.queueDepth, delayed: g.delayed, workers: workers.length,
    running: workers.reduce((n, w) => n + w.running.length, 0), sockets: app.sockets.size, feeds: app.feeds.size,
  }) + outboxMetrics(app.sockets);
  return new Response(body, { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } });
}
