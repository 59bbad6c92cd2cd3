/** GET /queues: queue depth (waiting, delayed, running, dead) and fleet capacity as JSON, for `taskwire queues`. */
import { listWorkers, queueGauges } from "../lib/fleet.ts";
import { type RequestContext, notFound } from "../lib/router.ts";

export async function fetch(req: Request, { app, rest }: RequestContext): Promise<Response> {
  if (rest !== "" || (req.method !== "GET" && req.method !== "HEAD")) return notFound("GET /queues");
  const [g, workers] = await Promise.all([queueGauges(app), listWorkers(app)]);
  const running = workers.reduce((n, w) => n + w.running.length, 0);
  return Response.json({
    // One queue today; a list so named queues can join without changing the shape.
    queues: [{ name: "default", queued: g.queueDepth, delayed: g.delayed, running, dead: g.dead }],
    workers: workers.length,
    slots: workers.reduce((n, w) => n + w.concurrency, 0),
  });
}
