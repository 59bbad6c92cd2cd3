/** The dead-letter list: GET /dead lists tasks that ended `exhausted`; POST /dead/<id>/retry runs one again as a new task. */
import { TaskwireError } from "../lib/errors.ts";
import { isTaskId } from "../lib/ids.ts";
import { taskInfo } from "../lib/queue.ts";
import { type RequestContext, notFound } from "../lib/router.ts";

export async function fetch(req: Request, { app, rest, url }: RequestContext): Promise<Response> {
  const k = app.keys;
  if (rest === "" && req.method === "GET") {
    const limit = Math.min(Math.max(Number(url.searchParams.get("limit") ?? 100) || 100, 1), 1000);
    const ids = await app.redis.lrange(k.dead, 0, limit - 1);
    const pipe = app.redis.pipeline();
    for (const id of ids) pipe.hgetall(k.task(id));
    const rows = (await pipe.exec()) ?? [];
    const items = ids.flatMap((id, i) => {
      const h = rows[i]?.[1] as Record<string, string> | undefined;
      return h?.state ? [{ ...taskInfo(id, h), args: safeJson(h.args) }] : [];
    });
    return Response.json({ total: await app.redis.llen(k.dead), items });
  }
  const m = /^([^/]+)\/retry$/.exec(rest);
  if (m && req.method === "POST") {
    const id = m[1]!;
    if (!isTaskId(id)) return notFound(`no task ${JSON.stringify(m[1]!.slice(0, 64))}`);
    const h = await app.redis.hgetall(k.task(id));
    if (!h.state) return notFound(`no task ${id} (unknown, or expired after RESULT_TTL_S)`);
    if (h.state !== "failed") throw new TaskwireError("bad_request", `task ${id} is ${h.state}; only failed tasks can be retried`);
    const { id: newId } = await app.queue.enqueue(app.queue.validate({ task: h.task ?? "", args: safeJson(h.args) }));
    await app.redis.lrem(k.dead, 0, id);
    return Response.json({ id: newId, retry_of: id }, { status: 202 });
  }
  return notFound();
}

function safeJson(s: string | undefined): unknown {
  try {
    return s ? JSON.parse(s) : undefined;
  } catch {
    return undefined;
  }
}
