/** GET /workers: every live worker in the fleet (host, pid, concurrency, running tasks) from its heartbeat. */
import { listWorkers } from "../lib/fleet.ts";
import type { RequestContext } from "../lib/router.ts";

export async function fetch(_req: Request, { app }: RequestContext): Promise<Response> {
  return Response.json(await listWorkers(app));
}
