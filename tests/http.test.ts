/** The HTTP API (PROTOCOL.md section 3) against a real redis-server, server and worker: /tasks, SSE with resume, /tasks/schema, /healthz, /metrics. */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { cli } from "./helpers/redis.ts";
import { type Stack, startStack } from "./helpers/stack.ts";
import { countsSettled, waitFor } from "./helpers/util.ts";
import { openSocket } from "./helpers/ws.ts";

setDefaultTimeout(20_000); // the machine is shared: leave room under load

let stack: Stack;
let base: string;
let prefix: string;
beforeAll(async () => {
  // No worker yet: the first tests look at queued tasks.
  stack = await startStack("http", { workers: 0, env: { WORKER_HEARTBEAT_MS: "200" } });
  base = stack.server.http;
  prefix = stack.env.TASKWIRE_PREFIX!;
}, 30_000);
afterAll(async () => {
  await stack?.stop();
});

const UNKNOWN_ID = "0193f7c2-6d1e-7a51-9c3e-41f0d2b8a9e4";
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const numsub = (id: string) => Number(cli(stack.redis, "pubsub", "shardnumsub", `${prefix}:ch:{${id}}`).split("\n")[1]);

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  const res = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

async function submit(task: string, args: object, key?: string): Promise<string> {
  const r = await call("POST", "/tasks", { task, args, ...(key ? { key } : {}) });
  expect(r.status).toBe(202);
  expect(Object.keys(r.json)).toEqual(["id"]);
  return r.json.id;
}

async function stateOf(id: string): Promise<string> {
  return (await call("GET", `/tasks/${id}`)).json.state;
}

interface SseEvent {
  id?: string;
  data: any;
}

/**
 * Reads an SSE stream: each event's id and parsed data, until the server ends the stream or `stopAfter`
 * events came (then the connection is dropped, as a client losing its network would).
 */
async function sse(path: string, headers: Record<string, string> = {}, stopAfter = Infinity): Promise<{ status: number; type: string | null; events: SseEvent[]; ended: boolean }> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 10_000);
  const res = await fetch(`${base}${path}`, { headers, signal: abort.signal });
  const events: SseEvent[] = [];
  let ended = false;
  if (res.status === 200 && res.body) {
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    try {
      while (events.length < stopAfter) {
        const { done, value } = await reader.read();
        if (done) {
          ended = true;
          break;
        }
        buf += dec.decode(value, { stream: true });
        let cut: number;
        while ((cut = buf.indexOf("\n\n")) >= 0 && events.length < stopAfter) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          const ev: Partial<SseEvent> = {};
          for (const line of block.split("\n")) {
            if (line.startsWith("id: ")) ev.id = line.slice(4);
            else if (line.startsWith("data: ")) ev.data = JSON.parse(line.slice(6));
          }
          if (ev.data !== undefined) events.push(ev as SseEvent);
        }
      }
    } finally {
      clearTimeout(timer);
      if (!ended) abort.abort();
    }
  } else {
    clearTimeout(timer);
    await res.body?.cancel();
  }
  return { status: res.status, type: res.headers.get("content-type"), events, ended };
}

/** Every sample of a metric as "name{labels}" -> value. */
async function metrics(): Promise<Map<string, number>> {
  const res = await fetch(`${base}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  const out = new Map<string, number>();
  for (const line of (await res.text()).split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const sp = line.lastIndexOf(" ");
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

describe("before any worker runs", () => {
  test("POST /tasks -> 202 {id}; GET shows it queued; queue depth counts it; DELETE cancels it", async () => {
    const m0 = await metrics();
    const ids = [await submit("test_task", { task_id: "a" }), await submit("test_task", { task_id: "b" }), await submit("test_task", { task_id: "c" })];
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const got = await call("GET", `/tasks/${ids[0]}`);
    expect(got.status).toBe(200);
    expect(got.json).toEqual({ id: ids[0], task: "test_task", state: "queued", attempts: 0, created_at: expect.any(Number) });
    const m1 = await metrics();
    expect(m1.get("taskwire_queue_depth")).toBe(3);
    expect(m1.get("taskwire_tasks_running")).toBe(0);
    expect(m1.get("taskwire_workers")).toBe(0);
    // Counters are written every 100 ms, so they can be a moment behind.
    const submitted = 'taskwire_tasks_submitted_total{task="test_task"}';
    await waitFor(async () => (await metrics()).get(submitted) === (m0.get(submitted) ?? 0) + 3, 2_000, "the submit count");

    const del = await call("DELETE", `/tasks/${ids[2]}`);
    expect(del).toEqual({ status: 202, json: { id: ids[2], state: "cancelled" } });
    expect(await stateOf(ids[2]!)).toBe("cancelled");
    await waitFor(async () => (await metrics()).get('taskwire_tasks_cancelled_total{task="test_task"}') === 1, 2_000, "the cancel count");

    await stack.addWorker();
    await waitFor(async () => (await stateOf(ids[1]!)) === "succeeded", 5_000, "the queued tasks to run");
    expect((await call("GET", `/tasks/${ids[0]}`)).json).toMatchObject({ state: "succeeded", result: "a", attempts: 1 });
    expect(await stateOf(ids[2]!)).toBe("cancelled");
    expect((await call("GET", `/tasks/${ids[2]}`)).json).toMatchObject({ state: "cancelled", attempts: 0 }); // never ran
    expect((await metrics()).get("taskwire_queue_depth")).toBe(0);
  });
});

describe("/tasks", () => {
  test("bad submissions: status and error body with a stable code, the field named", async () => {
    expect(await call("POST", "/tasks", "{nope")).toEqual({ status: 400, json: { error: { code: "bad_json", message: "frame is not valid JSON: send one UTF-8 JSON object per text frame" } } });
    expect(await call("POST", "/tasks", [])).toEqual({
      status: 400,
      json: { error: { code: "bad_request", message: 'body: (root): Invalid input: expected object, received array; expected {"task": "...", "args": {...}}', issues: [{ path: [], message: "Invalid input: expected object, received array" }] } },
    });
    expect(await call("POST", "/tasks", { args: {} })).toEqual({
      status: 400,
      json: { error: { code: "bad_request", message: 'body: task: required: a task name (GET /tasks/schema lists them); expected {"task": "...", "args": {...}}', issues: [{ path: ["task"], message: "required: a task name (GET /tasks/schema lists them)" }] } },
    });
    expect(await call("POST", "/tasks", { task: "nope" })).toEqual({ status: 404, json: { error: { code: "unknown_task", message: 'task: no task named "nope"; GET /tasks/schema lists them' } } });
    expect(await call("POST", "/tasks", { task: "countdown", args: { steps: 10_001 } })).toEqual({
      status: 400,
      json: { error: { code: "invalid_args", message: "invalid args for countdown: args.steps: Too big: expected number to be <=10000", issues: [{ path: ["steps"], message: "Too big: expected number to be <=10000" }] } },
    });
    // A union's failure names what is wanted, not zod's "Invalid input".
    expect(await call("POST", "/tasks", { task: "test_task", args: {} })).toEqual({
      status: 400,
      json: { error: { code: "invalid_args", message: "invalid args for test_task: args.task_id: required: a string or a number", issues: [{ path: ["task_id"], message: "required: a string or a number" }] } },
    });
    expect((await call("POST", "/tasks", { task: "test_task", args: { task_id: [1] } })).json.error.message).toBe("invalid args for test_task: args.task_id: must be a string or a number");
    expect((await call("POST", "/tasks", "[".repeat(65) + "]".repeat(65))).json.error.code).toBe("too_large");
    expect(await call("GET", "/tasks")).toEqual({ status: 405, json: { error: { code: "bad_request", message: "GET /tasks is not supported; use POST /tasks submits; GET /tasks/schema lists the tasks; GET /tasks/<id> reads one" } } });
  });

  test("unknown or malformed ids: 404 not_found for GET, DELETE and events", async () => {
    const notFound = { status: 404, json: { error: { code: "not_found", message: `no task ${UNKNOWN_ID} (unknown, or expired after RESULT_TTL_S)` } } };
    expect(await call("GET", `/tasks/${UNKNOWN_ID}`)).toEqual(notFound);
    expect(await call("DELETE", `/tasks/${UNKNOWN_ID}`)).toEqual(notFound);
    expect(await call("GET", `/tasks/${UNKNOWN_ID}/events`)).toEqual(notFound);
    expect(await call("GET", "/tasks/abc")).toEqual({ status: 404, json: { error: { code: "not_found", message: 'no task "abc": use /tasks/<id> with an id from POST /tasks' } } });
  });

  test("GET /tasks/<id>: result, error and last progress", async () => {
    const ok = await submit("test_task", { task_id: 5 });
    const bad = await submit("fail", { message: "nope" });
    const cd = await submit("countdown", { steps: 3 });
    await waitFor(async () => (await stateOf(cd)) === "succeeded" && (await stateOf(bad)) === "failed", 5_000, "tasks to finish");
    const times = { created_at: expect.any(Number), started_at: expect.any(Number), finished_at: expect.any(Number) };
    expect((await call("GET", `/tasks/${ok}`)).json).toEqual({ id: ok, task: "test_task", state: "succeeded", result: 5, attempts: 1, ...times });
    expect((await call("GET", `/tasks/${bad}`)).json).toEqual({ id: bad, task: "fail", state: "failed", error: { code: "task_error", message: "nope" }, attempts: 1, ...times });
    expect((await call("GET", `/tasks/${cd}`)).json).toEqual({ id: cd, task: "countdown", state: "succeeded", result: "done", progress: { step: 3, of: 3 }, attempts: 1, ...times });
  });

  test("a small task's hash stays a listpack: options only where they differ from the defaults, no counts of 0 or empty names, the result once (in the final event)", async () => {
    const plain = await submit("test_task", { task_id: 1 });
    const tuned = await call("POST", "/tasks", { task: "test_task", args: { task_id: 2 }, options: { timeout_ms: 5_000, retries: 1, backoff_ms: 1_000 } });
    expect(tuned.status).toBe(202);
    await waitFor(async () => (await stateOf(plain)) === "succeeded" && (await stateOf(tuned.json.id)) === "succeeded", 5_000, "tasks to finish");
    const key = (id: string) => `${prefix}:task:{${id}}`;
    expect(cli(stack.redis, "hget", key(plain), "opts")).toBe("{}");
    expect(cli(stack.redis, "hget", key(tuned.json.id), "opts")).toBe('{"retries":1,"timeout_ms":5000}');
    // All four options in full are 69 bytes, over hash-max-listpack-value (64): a hashtable, 3.4 times the memory.
    for (const id of [plain, tuned.json.id]) expect(cli(stack.redis, "object", "encoding", key(id))).toBe("listpack");
    // The result is kept once, in the final event, and read from there.
    for (const field of ["result", "stalls", "key"]) expect(cli(stack.redis, "hexists", key(plain), field)).toBe("0");
    expect((await call("GET", `/tasks/${tuned.json.id}`)).json).toMatchObject({ state: "succeeded", result: 2 });
  });

  test("a task an older taskwire finished, its result in the hash as well, reads the same", async () => {
    const id = "0193f7c2-6d1e-7a51-9c3e-41f0d2b8a9e7";
    cli(stack.redis, "hset", `${prefix}:task:{${id}}`, "task", "test_task", "state", "succeeded", "attempts", "1", "result", '{"old":true}', "finished", "1700000000000");
    cli(stack.redis, "expire", `${prefix}:task:{${id}}`, "60");
    expect((await call("GET", `/tasks/${id}`)).json).toEqual({ id, task: "test_task", state: "succeeded", result: { old: true }, attempts: 1, finished_at: 1_700_000_000_000 });
  });

  test("DELETE a running task: 202 cancelling, then it ends cancelled; DELETE again answers the final state", async () => {
    const id = await submit("countdown", { steps: 200, interval_ms: 50 });
    await waitFor(async () => (await stateOf(id)) === "running", 5_000, "the task to start");
    expect(await call("DELETE", `/tasks/${id}`)).toEqual({ status: 202, json: { id, state: "cancelling" } });
    await waitFor(async () => (await stateOf(id)) === "cancelled", 5_000, "the task to end cancelled");
    expect(await call("DELETE", `/tasks/${id}`)).toEqual({ status: 202, json: { id, state: "cancelled" } });
    const { events, ended } = await sse(`/tasks/${id}/events`);
    expect(ended).toBe(true);
    expect(events.at(-1)!.data).toEqual({ type: "cancelled", id, seq: events.length });
  });

  test("two racing POSTs with one key get one id and run once", async () => {
    const key = `k-${Math.random().toString(36).slice(2)}`;
    await countsSettled();
    const before = Number(cli(stack.redis, "hget", `${prefix}:stats`, "submitted:countdown") || 0);
    const [a, b] = await Promise.all([submit("countdown", { steps: 2 }, key), submit("countdown", { steps: 2 }, key)]);
    expect(a).toBe(b);
    await waitFor(async () => (await stateOf(a)) === "succeeded", 5_000, "the task to finish");
    expect(await submit("countdown", { steps: 2 }, key)).toBe(a);
    const count = () => Number(cli(stack.redis, "hget", `${prefix}:stats`, "submitted:countdown"));
    await countsSettled();
    expect(count()).toBe(before + 1);
    expect((await call("GET", `/tasks/${a}`)).json.attempts).toBe(1);
  });
});

describe("GET /tasks/<id>/events (SSE)", () => {
  test("replay then live, id: = seq, the same frames as /ws, stream ends after the final event", async () => {
    const id = await submit("countdown", { steps: 8, interval_ms: 60 });
    await waitFor(async () => ((await call("GET", `/tasks/${id}`)).json.progress?.step ?? 0) >= 2, 5_000, "two steps");
    const { status, type, events, ended } = await sse(`/tasks/${id}/events`);
    expect(status).toBe(200);
    expect(type).toBe("text/event-stream");
    expect(ended).toBe(true);
    expect(events.map((e) => e.id)).toEqual(range(1, 9).map(String));
    expect(events.map((e) => e.data)).toEqual([
      ...range(1, 8).map((i) => ({ type: "progress", id, seq: i, data: { step: i, of: 8 } })),
      { type: "result", id, seq: 9, result: "done" },
    ]);
    // And the same bytes a /ws subscriber gets.
    const s = await openSocket(`${stack.server.ws}/ws`);
    s.send({ type: "subscribe", id });
    for (const e of events) expect(await s.nextRaw()).toBe(JSON.stringify(e.data));
    s.close();
  });

  test("Last-Event-ID and ?after resume after that seq", async () => {
    const id = await submit("countdown", { steps: 4 });
    await waitFor(async () => (await stateOf(id)) === "succeeded", 5_000, "the task to finish");
    expect((await sse(`/tasks/${id}/events`, { "last-event-id": "3" })).events.map((e) => e.id)).toEqual(["4", "5"]);
    expect((await sse(`/tasks/${id}/events?after=1`)).events.map((e) => e.id)).toEqual(["2", "3", "4", "5"]);
    expect((await sse(`/tasks/${id}/events?after=1`, { "last-event-id": "4" })).events.map((e) => e.id)).toEqual(["5"]);
    // Resuming after the final event (an EventSource reconnecting once the stream ended): 204 stops it.
    for (const q of ["", "?after=99"]) {
      const done = await fetch(`${base}/tasks/${id}/events${q}`, { headers: q ? {} : { "last-event-id": "5" } });
      expect(done.status).toBe(204);
      expect(await done.text()).toBe("");
    }
    expect(await call("GET", `/tasks/${id}/events?after=x`)).toEqual({
      status: 400,
      json: { error: { code: "bad_request", message: 'Last-Event-ID / after: "x" is not a seq; use a whole number >= 0' } },
    });
  });

  test("a dropped stream resumed with Last-Event-ID sees every step exactly once; the dropped one leaves no subscription", async () => {
    const id = await submit("countdown", { steps: 20, interval_ms: 40 });
    const first = await sse(`/tasks/${id}/events`, {}, 4);
    expect(first.ended).toBe(false);
    expect(first.events.map((e) => e.id)).toEqual(["1", "2", "3", "4"]);
    await waitFor(() => numsub(id) === 0, 3_000, "the dropped stream's subscription to end");
    const rest = await sse(`/tasks/${id}/events`, { "last-event-id": first.events.at(-1)!.id! });
    expect(rest.ended).toBe(true);
    const all = [...first.events, ...rest.events];
    expect(all.map((e) => e.data.seq)).toEqual(range(1, 21));
    expect(all.map((e) => Number(e.id))).toEqual(range(1, 21));
    expect(all.at(-1)!.data).toEqual({ type: "result", id, seq: 21, result: "done" });
    await waitFor(() => numsub(id) === 0, 3_000, "unsubscribe after the final event");
  });
});

test("GET /tasks/schema: every task with its args as zod's JSON Schema", async () => {
  const { status, json } = await call("GET", "/tasks/schema");
  expect(status).toBe(200);
  const S = "https://json-schema.org/draft/2020-12/schema";
  expect(json).toEqual([
    {
      name: "test_task", description: "Returns task_id unchanged after delay_ms.", options: {},
      args: { $schema: S, type: "object", properties: { task_id: { type: ["string", "number"] }, delay_ms: { type: "integer", minimum: 0, maximum: 3_600_000 } }, required: ["task_id"] },
    },
    {
      name: "countdown", description: "Counts steps, reporting each as progress.", options: {},
      args: { $schema: S, type: "object", properties: { steps: { type: "integer", minimum: 1, maximum: 10_000 }, interval_ms: { type: "integer", minimum: 0, maximum: 60_000 } }, required: ["steps"] },
    },
    {
      name: "fail", description: "Throws an error with the given message.", options: {},
      args: { $schema: S, type: "object", properties: { message: { type: "string", maxLength: 10_000 } } },
    },
  ]);
});

test("GET /metrics: counters by task name, queue depth, running, sockets, subscriptions, latency histogram", async () => {
  await countsSettled();
  const m0 = await metrics();
  const s = await openSocket(`${stack.server.ws}/ws`);
  for (const [ref, task, args] of [["ok", "test_task", { task_id: 1 }], ["bad", "fail", {}]] as const) {
    s.send({ type: "submit", ref, task, args });
    await s.until((f) => f.type === "result" || f.type === "failed");
  }
  s.send({ type: "submit", ref: "long", task: "countdown", args: { steps: 200, interval_ms: 50 } });
  const long = (await s.next()).id;
  await s.next(); // running
  // The running gauge comes from worker heartbeats (every 200 ms here).
  await waitFor(async () => (await metrics()).get("taskwire_tasks_running") === 1, 3_000, "a heartbeat carrying the running task");
  await countsSettled();
  const m1 = await metrics();
  const delta = (k: string) => (m1.get(k) ?? 0) - (m0.get(k) ?? 0);
  expect(delta('taskwire_tasks_submitted_total{task="test_task"}')).toBe(1);
  expect(delta('taskwire_tasks_submitted_total{task="fail"}')).toBe(1);
  expect(delta('taskwire_tasks_submitted_total{task="countdown"}')).toBe(1);
  expect(delta('taskwire_tasks_succeeded_total{task="test_task"}')).toBe(1);
  expect(delta('taskwire_tasks_failed_total{task="fail"}')).toBe(1);
  expect(m1.get("taskwire_queue_depth")).toBe(0);
  expect(m1.get("taskwire_tasks_running")).toBe(1);
  expect(m1.get("taskwire_workers")).toBe(1);
  expect(m1.get("taskwire_sockets")).toBe(1);
  expect(m1.get("taskwire_task_subscriptions")).toBe(1);
  expect(delta("taskwire_submit_to_result_ms_count")).toBe(2);
  expect(m1.get('taskwire_submit_to_result_ms_bucket{le="+Inf"}')).toBe(m1.get("taskwire_submit_to_result_ms_count"));
  const buckets = [...m1].filter(([k]) => k.startsWith("taskwire_submit_to_result_ms_bucket")).map(([, v]) => v);
  expect(buckets.length).toBe(17);
  expect(buckets).toEqual([...buckets].sort((a, b) => a - b));
  expect(m1.get("taskwire_submit_to_result_ms_sum")).toBeGreaterThan(0);

  s.send({ type: "cancel", id: long });
  await s.until((f) => f.type === "cancelled");
  s.close();
  await waitFor(async () => (await metrics()).get("taskwire_sockets") === 0, 3_000, "the socket gauge to drop");
  await countsSettled();
  const m2 = await metrics();
  expect((m2.get('taskwire_tasks_cancelled_total{task="countdown"}') ?? 0) - (m0.get('taskwire_tasks_cancelled_total{task="countdown"}') ?? 0)).toBe(1);
  expect(m2.get("taskwire_task_subscriptions")).toBe(0);

  // /async_task/ tasks count in the latency histogram too.
  const seed = await openSocket(`${stack.server.ws}/async_task/`);
  seed.send({ task_id: 1 });
  await seed.closed;
  expect(((await metrics()).get("taskwire_submit_to_result_ms_count") ?? 0) - (m2.get("taskwire_submit_to_result_ms_count") ?? 0)).toBe(1);
});

test("GET /healthz: 200 while Redis answers, 503 when it does not", async () => {
  expect(await call("GET", "/healthz")).toEqual({ status: 200, json: { ok: true, redis: "up" } });
  await stack.redis.kill();
  await waitFor(async () => (await fetch(`${base}/healthz`)).status === 503, 5_000, "healthz to report 503");
  expect(await call("GET", "/healthz")).toEqual({ status: 503, json: { ok: false, redis: "down" } });
  await stack.redis.restart();
  await waitFor(async () => (await fetch(`${base}/healthz`)).status === 200, 5_000, "healthz to recover");
});
