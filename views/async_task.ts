/**
 * GET /async_task/: the seed endpoint, kept frame for frame (PROTOCOL.md section 1). One JSON object
 * in; "task <id> is running..." then the result (or one error row) out, Python json.dumps layout; close 1000.
 */
import type { App } from "../lib/app.ts";
import { TaskwireError, toWireError } from "../lib/errors.ts";
import { newTaskId } from "../lib/ids.ts";
import { parseJson, pyDumps } from "../lib/protocol.ts";
import type { EventEntry } from "../lib/queue.ts";
import type { RequestContext, Socket } from "../lib/router.ts";

type Lang = "en" | "zh";

interface Seed {
  app: App;
  lang: Lang;
  started: boolean;
  closed: boolean;
  taskId?: string;
  watcher?: { sent: number; deliver(e: EventEntry): void };
}

type Ws = Socket<Seed>;

const TEXT = {
  en: {
    badFormat: "invalid parameter format",
    missing: "missing required parameter: task_id",
    running: (id: string) => `task ${id} is running...`,
    failed: (m: string) => `task failed: ${m}`,
    cancelled: "task cancelled",
    unknownTask: (m: string) => `unknown task: ${m}`,
    invalidArgs: (m: string) => `invalid task arguments: ${m}`,
    tooLarge: (m: string) => `request too large: ${m}`,
    unavailable: "service unavailable, please retry shortly",
    internal: "internal error",
  },
  zh: {
    badFormat: "参数格式有误",
    missing: "缺少必要参数",
    running: (id: string) => `任务${id}正在执行。。。`,
    failed: (m: string) => `任务执行失败：${m}`,
    cancelled: "任务已取消",
    unknownTask: (m: string) => `未知任务：${m}`,
    invalidArgs: (m: string) => `任务参数无效：${m}`,
    tooLarge: (m: string) => `请求过大：${m}`,
    unavailable: "服务暂不可用，请稍后重试",
    internal: "内部错误",
  },
} as const;

export function upgrade(_req: Request, ctx: RequestContext): Seed {
  return { app: ctx.app, lang: ctx.url.searchParams.get("lang") === "zh" ? "zh" : "en", started: false, closed: false };
}

export function message(ws: Ws, data: string | Buffer): void {
  const s = ws.data.state;
  if (s.started) return; // one task per connection: later frames are ignored
  s.started = true;
  run(ws, data).catch((err) => {
    const wire = toWireError(err, (m, e) => s.app.log.error(m, e));
    const t = TEXT[s.lang];
    const msg = wire.code === "unavailable" ? t.unavailable : wire.code === "too_large" ? t.tooLarge(wire.message) : t.internal;
    finish(ws, { msg, flag: false, code: wire.code });
  });
}

export function close(ws: Ws): void {
  const s = ws.data.state;
  s.closed = true;
  if (s.taskId && s.watcher) s.app.feeds.unwatch(s.taskId, s.watcher);
}

function finish(ws: Ws, frame: Record<string, unknown>): void {
  if (ws.data.state.closed) return;
  ws.data.state.closed = true;
  // Corked, the last row and the close frame leave in one write (this runs from Redis's callback, not a socket's).
  ws.cork(() => {
    ws.send(pyDumps(frame));
    ws.close(1000, "done");
  });
}

async function run(ws: Ws, data: string | Buffer): Promise<void> {
  const s = ws.data.state;
  const t = TEXT[s.lang];
  const refuse = (msg: string, code: string) => finish(ws, { msg, flag: false, code });
  if (typeof data !== "string") return refuse(t.badFormat, "bad_json");
  let input: unknown;
  try {
    input = parseJson(data, s.app.config.MAX_JSON_DEPTH);
  } catch (err) {
    if (err instanceof TaskwireError && err.code === "too_large") return refuse(t.badFormat, "too_large");
    return refuse(t.badFormat, "bad_json");
  }
  if (typeof input !== "object" || input === null || Array.isArray(input)) return refuse(t.badFormat, "bad_request");
  const { task = "test_task", args = {}, ...fields } = input as Record<string, unknown>;
  const taskId = fields.task_id;
  if (taskId === undefined || taskId === null || taskId === "") return refuse(t.missing, "missing_param");
  if (typeof task !== "string") return refuse(t.unknownTask(String(task)), "unknown_task");
  if (typeof args !== "object" || args === null || Array.isArray(args)) return refuse(t.invalidArgs("args: expected an object"), "invalid_args");

  let validated;
  try {
    validated = s.app.queue.validate({ task, args: { ...(args as object), ...fields } });
  } catch (err) {
    if (!(err instanceof TaskwireError)) throw err;
    if (err.code === "unknown_task") return refuse(t.unknownTask(task), "unknown_task");
    if (err.code === "invalid_args") return refuse(t.invalidArgs(err.message), "invalid_args");
    throw err;
  }

  const id = newTaskId();
  s.taskId = id;
  const submittedAt = performance.now();
  s.watcher = {
    sent: 0,
    deliver: (e) => {
      if (e.final) s.app.metrics.observeLatency(performance.now() - submittedAt);
      onFinal(ws, e);
    },
  };
  try {
    const inbox = await s.app.feeds.holdNew(id, s.watcher);
    await s.app.queue.enqueue(validated, id, inbox);
  } catch (err) {
    s.app.feeds.unwatch(id, s.watcher);
    throw err;
  }
  if (s.closed) return;
  ws.send(pyDumps({ msg: t.running(typeof taskId === "string" ? taskId : pyDumps(taskId)), flag: true, id }));
  await s.app.feeds.release(id, s.watcher, true);
}

function onFinal(ws: Ws, e: EventEntry): void {
  if (!e.final) return; // the seed protocol has no progress frames
  const t = TEXT[ws.data.state.lang];
  let ev: { type?: string; result?: unknown; error?: { message?: string } };
  try {
    ev = JSON.parse(e.frame);
  } catch {
    return finish(ws, { msg: t.internal, flag: false, code: "internal" });
  }
  if (ev.type === "result") return finish(ws, { msg: "success", flag: true, data: { result: ev.result } });
  if (ev.type === "cancelled") return finish(ws, { msg: t.cancelled, flag: false, code: "cancelled" });
  finish(ws, { msg: t.failed(ev.error?.message ?? "unknown error"), flag: false, code: "task_failed" });
}
