/** The client SDK (client/) in Bun against a real redis-server, server and worker: typed submit, events, errors, cancel, watch, reconnect, /client.js. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConnectionClosedError, RequestRefusedError, TaskCancelledError, TaskFailedError, type TaskEvent, type Taskwire, connect } from "../client/index.ts";
import { type ServerProc, startServer } from "./helpers/procs.ts";
import { type Stack, startStack } from "./helpers/stack.ts";

let stack: Stack;
/** The server the tests talk to; the reconnect test replaces it with a restarted one on the same port. */
let server: ServerProc;
const opened: Taskwire[] = [];
const extra: ServerProc[] = [];

beforeAll(async () => {
  stack = await startStack("client");
  server = stack.server;
});
afterAll(async () => {
  for (const tw of opened) tw.close();
  for (const s of extra) await s.kill("SIGKILL");
  await stack?.stop();
});

function tw(url = server.http, token?: string): Taskwire {
  const c = connect(url, { token, minDelayMs: 50, maxDelayMs: 500 });
  opened.push(c);
  return c;
}

const steps = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

test("submit: run.id, every progress event once and in order (iterator and on()), typed result", async () => {
  const c = tw();
  const run = c.submit("countdown", { steps: 5, interval_ms: 20 });
  const heard: unknown[] = [];
  run.on("progress", (e) => heard.push(e.data));
  const seen: TaskEvent<"done">[] = [];
  for await (const e of run) seen.push(e);
  const id = await run.id;
  expect(run.taskId).toBe(id);
  expect(seen.map((e) => e.seq)).toEqual(steps(6));
  expect(seen.map((e) => e.type)).toEqual(["progress", "progress", "progress", "progress", "progress", "result"]);
  expect(heard).toEqual(steps(5).map((step) => ({ step, of: 5 })));
  const result: "done" = await run.result; // typed from tasks/countdown.ts
  expect(result).toBe("done");
  expect(await (await fetch(`${server.http}/tasks/${id}`)).json()).toMatchObject({ id, state: "succeeded", result: "done" });
});

test("arg and result types come from the task definitions; a wrong arg is a compile error (checked by tests/typecheck.test.ts)", async () => {
  const c = tw();
  const echo = c.submit("test_task", { task_id: 7 });
  const r: string | number = await echo.result;
  expect(r).toBe(7);
  const noArgs = c.submit("fail"); // every arg optional: args may be left out
  await expect(noArgs.result).rejects.toBeInstanceOf(TaskFailedError);
  // @ts-expect-error steps must be a number
  const wrongType = c.submit("countdown", { steps: "5" });
  // @ts-expect-error steps is required
  c.submit("countdown", {}).result.catch(() => {});
  // @ts-expect-error no such task
  c.submit("nope", {}).result.catch(() => {});
  // @ts-expect-error unknown field
  c.submit("countdown", { steps: 1, stepz: 2 }).result.catch(() => {});
  // The server refuses what the compiler was told to let through, naming the field.
  const err = await wrongType.result.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(RequestRefusedError);
  expect(err).toMatchObject({ code: "invalid_args" });
  expect((err as RequestRefusedError).issues?.[0]?.path).toEqual(["steps"]);
  await expect(wrongType.id).rejects.toBeInstanceOf(RequestRefusedError);
});

test("a failed task rejects run.result with TaskFailedError carrying its code and message", async () => {
  const c = tw();
  const run = c.submit("fail", { message: "boom" });
  const err = await run.result.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(TaskFailedError);
  expect(err).toMatchObject({ code: "task_error", message: "boom", id: await run.id });
  const events: TaskEvent[] = [];
  for await (const e of run) events.push(e); // the iterator ends with the failed event rather than throwing
  expect(events.at(-1)).toMatchObject({ type: "failed", error: { code: "task_error", message: "boom" } });
});

test("cancel(): the run ends with the cancelled event and TaskCancelledError", async () => {
  const c = tw();
  const run = c.submit("countdown", { steps: 200, interval_ms: 30 });
  run.cancel(); // before `accepted`: sent as soon as the id is known
  const events: TaskEvent[] = [];
  for await (const e of run) events.push(e);
  expect(events.at(-1)?.type).toBe("cancelled");
  expect(events.filter((e) => e.type === "progress").length).toBeLessThan(200);
  const err = await run.result.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(TaskCancelledError);
  expect(err).toMatchObject({ code: "cancelled", id: await run.id });
  expect(await (await fetch(`${server.http}/tasks/${await run.id}`)).json()).toMatchObject({ state: "cancelled" });
});

test("watch(id) follows a task submitted over HTTP, replays after `after`, and refuses an unknown id", async () => {
  const res = await fetch(`${server.http}/tasks`, { method: "POST", body: JSON.stringify({ task: "countdown", args: { steps: 4, interval_ms: 20 } }) });
  const { id } = (await res.json()) as { id: string };
  const c = tw();
  const live = c.watch<string>(id);
  expect(await live.id).toBe(id);
  expect(await live.result).toBe("done");
  const replay = c.watch(id, { after: 2 });
  const seqs: number[] = [];
  for await (const e of replay) seqs.push(e.seq);
  expect(seqs).toEqual([3, 4, 5]);
  const unknown = c.watch("0193f7c2-6d1e-7a51-9c3e-41f0d2b8a9e4");
  await expect(unknown.result).rejects.toMatchObject({ code: "not_found" });
});

test("server killed and restarted on the same port mid-countdown: every step arrives exactly once; a submit made while down runs once", async () => {
  const c = tw();
  const states: string[] = [];
  c.on("state", (s) => states.push(s));
  const run = c.submit("countdown", { steps: 30, interval_ms: 50 });
  const seqs: number[] = [];
  const done = (async () => {
    for await (const e of run) seqs.push(e.seq);
  })();
  done.catch(() => {}); // awaited below; if the test times out, afterAll's close() must not add an unhandled rejection
  // Wait until a few steps arrived, then kill the server process outright.
  await new Promise<void>((resolve) => {
    const off = run.on("progress", (e) => e.seq >= 5 && (off(), resolve()));
  });
  const port = server.port;
  await server.kill("SIGKILL");
  await Bun.sleep(300); // the worker keeps counting meanwhile; those events wait in the task's stored log
  const queued = c.submit("test_task", { task_id: "while-down" });
  expect(c.state).not.toBe("open");
  server = await startServer({ ...stack.env, PORT: String(port) });
  extra.push(server);
  await done;
  expect(seqs).toEqual(steps(31)); // 30 progress + result: none lost, none twice
  expect(await run.result).toBe("done");
  expect(await queued.result).toBe("while-down");
  expect(states).toContain("reconnecting");
  expect(states.at(-1)).toBe("open");
}, 30_000);

test("a wrong token: the connection closes with an unauthorized error instead of retrying forever", async () => {
  const guarded = await startServer({ ...stack.env, TASKWIRE_TOKEN: "s3cret-token-for-tests" });
  extra.push(guarded);
  const bad = tw(guarded.http, "wrong-token-0000000000");
  const errors: string[] = [];
  bad.on("error", (e) => errors.push(e.code));
  const run = bad.submit("test_task", { task_id: 1 });
  await expect(run.result).rejects.toMatchObject({ code: "unauthorized" });
  expect(errors).toEqual(["unauthorized"]);
  expect(bad.state).toBe("closed");
  const good = tw(guarded.ws + "/ws", "s3cret-token-for-tests");
  expect(await good.submit("test_task", { task_id: 2 }).result).toBe(2);
});

test("close(): live runs reject with ConnectionClosedError and later submits fail at once", async () => {
  const c = tw();
  const run = c.submit("countdown", { steps: 100, interval_ms: 50 });
  await run.id;
  c.close();
  await expect(run.result).rejects.toBeInstanceOf(ConnectionClosedError);
  await expect(c.submit("test_task", { task_id: 1 }).result).rejects.toBeInstanceOf(ConnectionClosedError);
  await expect(c.ready()).rejects.toBeInstanceOf(ConnectionClosedError);
});

test("GET /client.js serves the browser bundle with an ETag (304 when unchanged), and the bundle runs a task on its own", async () => {
  const res = await fetch(`${server.http}/client.js`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toContain("javascript");
  const etag = res.headers.get("etag");
  expect(etag).toMatch(/^".+"$/);
  const js = await res.text();
  expect(js).not.toContain("ioredis");
  expect(js).not.toContain("zod");
  const again = await fetch(`${server.http}/client.js`, { headers: { "if-none-match": etag! } });
  expect(again.status).toBe(304);
  const dir = mkdtempSync(join(tmpdir(), "taskwire-clientjs-"));
  try {
    const file = join(dir, "client.mjs");
    writeFileSync(file, js);
    const mod = (await import(file)) as typeof import("../client/index.ts");
    const c = mod.connect(server.http);
    try {
      expect(await c.submit("countdown", { steps: 2 }).result).toBe("done");
    } finally {
      c.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
