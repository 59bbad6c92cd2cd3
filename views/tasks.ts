/**
 * HTTP API over tasks (PROTOCOL.md section 3): POST /tasks, GET /tasks/schema, GET /tasks/<id>,
 * GET /tasks/<id>/events (Server-Sent Events, resumable by Last-Event-ID), DELETE /tasks/<id>.
 */
import { z } from "zod";
import type { App } from "../lib/app.ts";
import { TaskwireError, fromZodIssues } from "../lib/errors.ts";
import type { Watcher } from "../lib/feeds.ts";
import { Outbox, streamSink } from "../lib/outbox.ts";
import { isTaskId } from "../lib/ids.ts";
import { clientFrameSchemas, parseJson } from "../lib/protocol.ts";
import type { EventEntry } from "../lib/queue.ts";
import { clientAddress } from "../lib/rate-limit.ts";
import { type RequestContext, notFound } from "../lib/router.ts";
import { tasks } from "../tasks/index.ts";

/** The /ws submit frame without its envelope: one description of a submission for both endpoints. */
const submitBody = clientFrameSchemas.submit.omit({ type: true, ref: true });

export async function fetch(req: Request, ctx: RequestContext): Promise<Response> {
  const { app, rest } = ctx;
  const [id, sub, ...more] = rest.split("/");
  if (rest === "" && req.method === "POST") return submit(req, app, ctx.server);
  if (rest === "schema" && req.method === "GET") return schema();
  if (rest === "" || rest === "schema") return notAllowed(req, rest, "POST /tasks submits; GET /tasks/schema lists the tasks; GET /tasks/<id> reads one");
  if (!id || more.length > 0 || !isTaskId(id)) return notFound(`no task ${JSON.stringify(rest.slice(0, 64))}: use /tasks/<id> with an id from POST /tasks`);
  if (sub === undefined && req.method === "GET") {
    const info = await app.queue.get(id);
    return info ? Response.json(info) : taskNotFound(id);
  }
  if (sub === undefined && req.method === "DELETE") {
    const state = await app.queue.cancel(id);
    return state === "not_found" ? taskNotFound(id) : Response.json({ id, state }, { status: 202 });
  }
  if (sub === "events" && req.method === "GET") return events(req, ctx, id);
  return notAllowed(req, rest, "GET or DELETE /tasks/<id>, GET /tasks/<id>/events");
}

function notAllowed(req: Request, rest: string, use: string): Response {
  return Response.json({ error: { code: "bad_request", message: `${req.method} /tasks${rest ? "/" + rest : ""} is not supported; use ${use}` } }, { status: 405 });
}

function taskNotFound(id: string): Response {
  return notFound(`no task ${id} (unknown, or expired after RESULT_TTL_S)`);
}

async function submit(req: Request, app: App, server: RequestContext["server"]): Promise<Response> {
  if (!app.httpSubmits.take(clientAddress(req, server, app.config.TRUST_PROXY))) {
    throw new TaskwireError("rate_limited", `more than ${app.config.SUBMIT_RATE_PER_CLIENT} submits/s from this client (SUBMIT_RATE_PER_CLIENT); retry in a second`);
  }
  const text = await req.text();
  if (text.length > app.config.MAX_PAYLOAD_BYTES) throw new TaskwireError("too_large", `body over ${app.config.MAX_PAYLOAD_BYTES} bytes (MAX_PAYLOAD_BYTES)`);
  const body = submitBody.safeParse(parseJson(text, app.config.MAX_JSON_DEPTH));
  if (!body.success) {
    const issues = fromZodIssues(body.error.issues);
    throw new TaskwireError("bad_request", `body: ${issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")}; expected {"task": "...", "args": {...}}`, issues);
  }
  const { id } = await app.queue.enqueue(app.queue.validate(body.data));
  return Response.json({ id }, { status: 202 });
}

let schemaCache: Response | undefined;
function schema(): Response {
  schemaCache ??= Response.json(
    Object.values(tasks).map((t) => ({ name: t.name, description: t.description ?? "", args: z.toJSONSchema(t.args, { io: "input" }), options: t.options ?? {} })),
  );
  return schemaCache.clone();
}

async function events(req: Request, ctx: RequestContext, id: string): Promise<Response> {
  const { app } = ctx;
  const lastId = req.headers.get("last-event-id") ?? ctx.url.searchParams.get("after") ?? "0";
  const asked = Number(lastId);
  if (!Number.isSafeInteger(asked) || asked < 0) {
    throw new TaskwireError("bad_request", `Last-Event-ID / after: ${JSON.stringify(lastId)} is not a seq; use a whole number >= 0`);
  }
  const after = await app.queue.resumeFrom(id, asked);
  if (after === undefined) return taskNotFound(id);
  // The client has the final event: 204 is what tells an EventSource to stop reconnecting.
  if (after === "done") return new Response(null, { status: 204 });
  ctx.server.timeout(req, 0); // an event stream is idle between events; Bun's default would cut it at 10 s
  const { SEND_HIGH_WATER_BYTES, SLOW_CLIENT_CLOSE_MS } = app.config;
  let keepAlive: ReturnType<typeof setInterval> | undefined;
  let outbox: Outbox | undefined;
  let ended = false;
  const w: Watcher = {
    sent: after,
    deliver(e: EventEntry) {
      outbox?.event(id, e);
      if (e.final) end();
    },
  };
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const end = (err?: Error) => {
    if (ended) return;
    ended = true;
    clearInterval(keepAlive);
    app.feeds.unwatch(id, w);
    outbox?.dispose();
    outbox = undefined; // nothing is written to a stream that has ended
    try {
      if (err) controller.error(err);
      else controller.close();
    } catch {
      // the reader went away first
    }
  };
  // Sized in bytes, so a reader that stops reading costs SEND_HIGH_WATER_BYTES and coalesced progress,
  // exactly as a slow WebSocket does (lib/outbox.ts); pull() is the stream's drain.
  const stream = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
        outbox = new Outbox(streamSink(c, () => end(new Error("client too slow to read"))), SLOW_CLIENT_CLOSE_MS, (e) => `id: ${e.seq}\ndata: ${e.frame}\n\n`);
        outbox.send(": taskwire event stream\nretry: 1000\n\n");
        keepAlive = setInterval(() => outbox?.send(": keep-alive\n\n"), 15_000);
        app.feeds.watch(id, w).then(
          (found) => {
            if (found) return;
            outbox?.send(`event: error\ndata: ${JSON.stringify({ type: "error", id, error: { code: "not_found", message: `no task ${id}` } })}\n\n`);
            end();
          },
          (err) => end(err instanceof Error ? err : new Error(String(err))),
        );
      },
      pull() {
        outbox?.drain();
      },
      cancel: () => end(),
    },
    new ByteLengthQueuingStrategy({ highWaterMark: SEND_HIGH_WATER_BYTES }),
  );
  return new Response(stream, {
    headers: { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive", "x-accel-buffering": "no" },
  });
}
