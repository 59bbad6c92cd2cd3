/**
 * The dead-letter list: GET /dead lists tasks that ended `exhausted` (newest first); POST /dead/<id>/retry
 * runs one again as a new task, with the same task, args and options (body `{"options": {...}}` overrides).
 */
import { z } from "zod";
import type { App } from "../lib/app.ts";
import { TaskwireError, describeIssues, fromZodIssues } from "../lib/errors.ts";
import { isTaskId } from "../lib/ids.ts";
import { parseJson } from "../lib/protocol.ts";
import { taskInfo } from "../lib/queue.ts";
import { type RequestContext, notFound } from "../lib/router.ts";
import { readStoredOptions } from "../tasks/define.ts";

const retryBody = z.strictObject({ options: z.record(z.string(), z.unknown()).optional() });

export async function fetch(req: Request, { app, rest, url }: RequestContext): Promise<Response> {
  const k = app.keys;
  if (rest === "" && req.method === "GET") {
    const limit = Math.min(Math.max(Number(url.searchParams.get("limit") ?? 100) || 100, 1), 1000);
    const ids = await app.redis.lrange(k.dead, 0, limit - 1);
    // One read per task (not a pipeline): on a cluster each task has its own slot.
    const rows = await Promise.all(ids.map((id) => app.redis.hgetall(k.task(id))));
    const expired: string[] = [];
    const items = ids.flatMap((id, i) => {
      const h = rows[i];
      if (!h?.state) expired.push(id);
      return h?.state ? [{ ...taskInfo(id, h), args: safeJson(h.args), options: readStoredOptions(h.opts) }] : [];
    });
    // An entry outlives its task only until someone lists it: the task expired after RESULT_TTL_S.
    if (expired.length > 0) {
      const drop = app.redis.pipeline();
      for (const id of expired) drop.lrem(k.dead, 0, id);
      await drop.exec();
    }
    return Response.json({ total: await app.redis.llen(k.dead), items });
  }
  const m = /^([^/]+)\/retry$/.exec(rest);
  if (m && req.method === "POST") return retry(req, m[1]!, app);
  if (rest === "" || m) {
    const message = `${req.method} is not supported on /dead${rest ? `/${rest}` : ""}: use GET /dead or POST /dead/<id>/retry`;
    return Response.json({ error: { code: "bad_request", message } }, { status: 405 });
  }
  return notFound();
}

async function retry(req: Request, id: string, app: App): Promise<Response> {
  const k = app.keys;
  if (!isTaskId(id)) return notFound(`no task ${JSON.stringify(String(id).slice(0, 64))}`);
  const text = await req.text();
  if (text.length > app.config.MAX_PAYLOAD_BYTES) throw new TaskwireError("too_large", `body over ${app.config.MAX_PAYLOAD_BYTES} bytes (MAX_PAYLOAD_BYTES)`);
  const body = retryBody.safeParse(text.trim() === "" ? {} : parseJson(text, app.config.MAX_JSON_DEPTH));
  if (!body.success) {
    const issues = fromZodIssues(body.error.issues);
    throw new TaskwireError("bad_request", `body: ${describeIssues(issues, "body")}; expected nothing or {"options": {"retries"?, "backoff_ms"?, "backoff_max_ms"?, "timeout_ms"?}}`, issues);
  }
  const h = await app.redis.hgetall(k.task(id));
  if (!h.state) return notFound(`no task ${id} (unknown, or expired after RESULT_TTL_S)`);
  if ((await app.redis.lpos(k.dead, id)) === null) {
    throw new TaskwireError("bad_request", `task ${id} is not in the dead-letter list (it is ${h.state}${h.state === "failed" ? ", or was already retried" : ""}); GET /dead lists the ones that can be retried`);
  }
  const options = { ...readStoredOptions(h.opts), ...body.data.options };
  const v = app.queue.validate({ task: h.task ?? "", args: safeJson(h.args), options });
  // Keyed by the dead task, so a repeated or concurrent POST runs it once and answers the same id.
  const { id: newId } = await app.queue.enqueue({ ...v, key: `dead-retry:${id}` });
  await app.redis.lrem(k.dead, 0, id);
  return Response.json({ id: newId, retry_of: id }, { status: 202 });
}

function safeJson(s: string | undefined): unknown {
  try {
    return s ? JSON.parse(s) : undefined;
  } catch {
    return undefined;
  }
}
