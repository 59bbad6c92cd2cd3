/** /ws (PROTOCOL.md section 2) against a real redis-server, server and workers: frames, errors, seq and replay, shared subscriptions, cancel, idempotency keys. */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { Feeds } from "../lib/feeds.ts";
import { makeKeys } from "../lib/keys.ts";
import { makeLogger } from "../lib/log.ts";
import { Queue } from "../lib/queue.ts";
import { createRedis, waitReady } from "../lib/redis.ts";
import { type Proc, type ServerProc, startServer, startWorker } from "./helpers/procs.ts";
import { cli } from "./helpers/redis.ts";
import { type Stack, startStack } from "./helpers/stack.ts";
import { countsSettled, metric, uniquePrefix, waitFor } from "./helpers/util.ts";
import { type TestSocket, openSocket } from "./helpers/ws.ts";

setDefaultTimeout(20_000); // the machine is shared: leave room under load

let stack: Stack;
let prefix: string;
beforeAll(async () => {
  stack = await startStack("ws");
  prefix = stack.env.TASKWIRE_PREFIX!;
}, 30_000);
afterAll(async () => {
  await stack?.stop();
});

const UNKNOWN_ID = "0193f7c2-6d1e-7a51-9c3e-41f0d2b8a9e4";
const socket = (server: ServerProc = stack.server) => openSocket(`${server.ws}/ws`);
const numsub = (id: string, p = prefix) => Number(cli(stack.redis, "pubsub", "shardnumsub", `${p}:ch:{${id}}`).split("\n")[1]);
const hget = (id: string, field: string, p = prefix) => cli(stack.redis, "hget", `${p}:task:{${id}}`, field);
const stat = (field: string, p = prefix) => Number(cli(stack.redis, "hget", `${p}:stats`, field) || 0);
const seqs = (frames: { seq?: number }[]) => frames.map((f) => f.seq);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Waits `ms` and returns whatever arrived meanwhile: proves that nothing more came. */
async function quiet(s: TestSocket, ms = 300): Promise<string[]> {
  await Bun.sleep(ms);
  return s.pending();
}

async function submitOk(s: TestSocket, ref: string, task: string, args: object): Promise<string> {
  s.send({ type: "submit", ref, task, args });
  const f = await s.next();
  expect(f).toMatchObject({ type: "accepted", ref });
  return f.id;
}

describe("errors: one frame each, the socket stays open", () => {
  let s: TestSocket;
  beforeAll(async () => {
    s = await socket();
  });
  afterAll(() => s.close());

  const cases: [string, string | ArrayBuffer, object][] = [
    ["not JSON", "{nope", { type: "error", error: { code: "bad_json", message: "frame is not valid JSON: send one UTF-8 JSON object per text frame" } }],
    ["binary frame", new Uint8Array([123, 125]).buffer, { type: "error", error: { code: "bad_json", message: "binary frames are not accepted: send JSON as a text frame" } }],
    ["JSON array", "[]", { type: "error", error: { code: "bad_request", message: 'frame must be a JSON object with a "type" field' } }],
    ["JSON null", "null", { type: "error", error: { code: "bad_request", message: 'frame must be a JSON object with a "type" field' } }],
    ["no type, ref echoed", '{"ref":"r0"}', { type: "error", ref: "r0", error: { code: "bad_request", message: 'type: required string; one of "submit", "subscribe", "cancel"' } }],
    ["unknown type", '{"type":"nope","ref":"r1"}', { type: "error", ref: "r1", error: { code: "unknown_type", message: 'type: unknown "nope"; use "submit", "subscribe" or "cancel"' } }],
    ["unknown task", '{"type":"submit","ref":"r2","task":"nope"}', { type: "error", ref: "r2", error: { code: "unknown_task", message: 'task: no task named "nope"; GET /tasks/schema lists them' } }],
    [
      "submit without ref",
      '{"type":"submit","task":"test_task","args":{"task_id":1}}',
      { type: "error", error: { code: "bad_request", message: "invalid submit frame: ref: required: a string you choose to match the answer to this submit", issues: [{ path: ["ref"], message: "required: a string you choose to match the answer to this submit" }] } },
    ],
    [
      "ref over 128 characters is not echoed",
      JSON.stringify({ type: "submit", ref: "x".repeat(129), task: "test_task", args: { task_id: 1 } }),
      { type: "error", error: { code: "bad_request", message: "invalid submit frame: ref: use at most 128 characters", issues: [{ path: ["ref"], message: "use at most 128 characters" }] } },
    ],
    [
      "args not an object",
      '{"type":"submit","ref":"r3","task":"test_task","args":[1]}',
      { type: "error", ref: "r3", error: { code: "bad_request", message: "invalid submit frame: args: must be a JSON object of the task's arguments", issues: [{ path: ["args"], message: "must be a JSON object of the task's arguments" }] } },
    ],
    [
      "negative after",
      `{"type":"subscribe","id":"${UNKNOWN_ID}","after":-1}`,
      { type: "error", id: UNKNOWN_ID, error: { code: "bad_request", message: "invalid subscribe frame: after: must be a whole number >= 0", issues: [{ path: ["after"], message: "must be a whole number >= 0" }] } },
    ],
    ["subscribe to an unknown id", `{"type":"subscribe","id":"${UNKNOWN_ID}"}`, { type: "error", id: UNKNOWN_ID, error: { code: "not_found", message: `id: no task "${UNKNOWN_ID}" (unknown, or expired after RESULT_TTL_S)` } }],
    ["subscribe to an unknown id with after", `{"type":"subscribe","id":"${UNKNOWN_ID}","after":5}`, { type: "error", id: UNKNOWN_ID, error: { code: "not_found", message: `id: no task "${UNKNOWN_ID}" (unknown, or expired after RESULT_TTL_S)` } }],
    ["subscribe to a malformed id", '{"type":"subscribe","id":"abc","after":3}', { type: "error", id: "abc", error: { code: "not_found", message: 'id: no task "abc" (unknown, or expired after RESULT_TTL_S)' } }],
    ["cancel an unknown id", `{"type":"cancel","id":"${UNKNOWN_ID}"}`, { type: "error", id: UNKNOWN_ID, error: { code: "not_found", message: `id: no task "${UNKNOWN_ID}" (unknown, or expired after RESULT_TTL_S)` } }],
    ["JSON nested past 64 levels", "[".repeat(65) + "]".repeat(65), { type: "error", error: { code: "too_large", message: "JSON nested deeper than 64 levels (MAX_JSON_DEPTH)" } }],
  ];
  for (const [name, payload, expected] of cases) {
    test(name, async () => {
      s.ws.send(payload);
      expect(await s.next()).toEqual(expected);
      expect(await quiet(s, 50)).toEqual([]);
    });
  }

  test("invalid args: code invalid_args, the ref, zod issues as {path, message} without the input", async () => {
    s.send({ type: "submit", ref: "r4", task: "countdown", args: { steps: 0, interval_ms: "fast" } });
    const f = await s.next();
    expect(f).toEqual({
      type: "error",
      ref: "r4",
      error: {
        code: "invalid_args",
        message: "invalid args for countdown: args.steps: Too small: expected number to be >=1; args.interval_ms: Invalid input: expected number, received string",
        issues: [
          { path: ["steps"], message: "Too small: expected number to be >=1" },
          { path: ["interval_ms"], message: "Invalid input: expected number, received string" },
        ],
      },
    });
  });

  test("subscribe frames for one unknown id sent back to back (each replacing the last's watch): every one gets not_found", async () => {
    for (let i = 0; i < 5; i++) s.send({ type: "subscribe", id: UNKNOWN_ID });
    for (let i = 0; i < 5; i++) expect(await s.next()).toMatchObject({ type: "error", id: UNKNOWN_ID, error: { code: "not_found" } });
  });

  test("after all of the above the same socket still runs tasks, and a 128-character ref is fine", async () => {
    const ref = "y".repeat(128);
    const id = await submitOk(s, ref, "test_task", { task_id: "still open" });
    expect(await s.next()).toEqual({ type: "result", id, seq: 1, result: "still open" });
    expect(s.ws.readyState).toBe(WebSocket.OPEN);
  });
});

describe("events", () => {
  test("accepted, then progress seq 1..n, then result: exact frames", async () => {
    const s = await socket();
    const id = await submitOk(s, "c", "countdown", { steps: 5 });
    const frames = await s.until((f) => f.type === "result");
    expect(frames).toEqual([
      ...range(1, 5).map((i) => ({ type: "progress", id, seq: i, data: { step: i, of: 5 } })),
      { type: "result", id, seq: 6, result: "done" },
    ]);
    expect(await quiet(s)).toEqual([]);
    s.close();
  });

  test("the same frames with the per-task commands on ioredis (TASK_REDIS_CLIENT=ioredis) as on Bun's client (the default)", async () => {
    // On Bun's client a process has two command connections (ioredis for the rest, Bun's for the per-task scripts); on ioredis, one.
    const commandConnections = (who: "server" | "worker") =>
      cli(stack.redis, "client", "list").split("\n").filter((l) => l.includes(` name=taskwire-${who}:command `)).length;
    expect(stack.workers[0]!.output()).toContain("per-task commands over Bun's Redis client");
    const before = { server: commandConnections("server"), worker: commandConnections("worker") };
    const io = await startStack("ws-ioredis", { redis: stack.redis, env: { TASK_REDIS_CLIENT: "ioredis" } });
    try {
      expect(io.workers[0]!.output()).toContain("per-task commands over ioredis");
      expect(commandConnections("server")).toBe(before.server + 1);
      expect(commandConnections("worker")).toBe(before.worker + 1);
      await io.addWorker({ TASK_REDIS_CLIENT: "bun" });
      expect(commandConnections("worker")).toBe(before.worker + 3);
      const bunServer = await startServer(stack.env);
      expect(commandConnections("server")).toBe(before.server + 3);
      await bunServer.kill("SIGKILL");
      await io.workers.pop()!.kill("SIGKILL"); // the rest of this test on the ioredis worker alone
      const s = await openSocket(`${io.server.ws}/ws`);
      const id = await submitOk(s, "c", "countdown", { steps: 5 });
      expect(await s.until((f) => f.type === "result")).toEqual([
        ...range(1, 5).map((i) => ({ type: "progress", id, seq: i, data: { step: i, of: 5 } })),
        { type: "result", id, seq: 6, result: "done" },
      ]);
      // Many at once: starts and outcomes of one turn share a pipeline there.
      for (let i = 0; i < 40; i++) s.send({ type: "submit", ref: `t${i}`, task: "test_task", args: { task_id: i } });
      let results = 0;
      const frames = await s.until((f) => f.type === "result" && ++results === 40);
      const refOf = new Map(frames.filter((f) => f.type === "accepted").map((f) => [f.id, f.ref]));
      const got = frames.filter((f) => f.type === "result").map((f) => `${refOf.get(f.id)}=${f.result}`).sort();
      expect(got).toEqual(range(0, 39).map((i) => `t${i}=${i}`).sort());
      expect(await quiet(s)).toEqual([]);
      s.close();
    } finally {
      await io.stop();
    }
  });

  test("a task that throws ends with failed, code task_error and its message", async () => {
    const s = await socket();
    const id = await submitOk(s, "f", "fail", { message: "boom" });
    expect(await s.next()).toEqual({ type: "failed", id, seq: 1, error: { code: "task_error", message: "boom" } });
    s.close();
  });

  test("200 tasks in flight on one socket: each answered exactly once, accepted before its events", async () => {
    const s = await socket();
    const n = 200;
    for (let i = 0; i < n; i++) {
      if (i % 4 === 3) s.send({ type: "submit", ref: `r${i}`, task: "countdown", args: { steps: 3, interval_ms: 5 } });
      else s.send({ type: "submit", ref: `r${i}`, task: "test_task", args: { task_id: i, delay_ms: 20 } });
    }
    const idOfRef = new Map<string, string>();
    const refOfId = new Map<string, string>();
    const events = new Map<string, number[]>();
    const finals = new Map<string, unknown>();
    const frames = await s.until((f) => {
      if (f.type === "accepted") {
        expect(idOfRef.has(f.ref)).toBe(false);
        idOfRef.set(f.ref, f.id);
        refOfId.set(f.id, f.ref);
      } else {
        expect(refOfId.has(f.id)).toBe(true); // accepted came first
        events.set(f.id, [...(events.get(f.id) ?? []), f.seq]);
        if (f.type === "result") {
          expect(finals.has(f.id)).toBe(false);
          finals.set(f.id, f.result);
        }
      }
      return finals.size === n;
    }, 20_000);
    expect(frames.every((f) => f.type === "accepted" || f.type === "progress" || f.type === "result")).toBe(true);
    expect(idOfRef.size).toBe(n);
    for (let i = 0; i < n; i++) {
      const id = idOfRef.get(`r${i}`)!;
      if (i % 4 === 3) {
        expect(finals.get(id)).toBe("done");
        expect(events.get(id)).toEqual([1, 2, 3, 4]);
      } else {
        expect(finals.get(id)).toBe(i);
        expect(events.get(id)).toEqual([1]);
      }
    }
    expect(await quiet(s)).toEqual([]);
    s.close();
  });
});

describe("replay", () => {
  test("a reconnect mid-countdown resumes with `after` and sees every step exactly once", async () => {
    const a = await socket();
    const id = await submitOk(a, "long", "countdown", { steps: 30, interval_ms: 40 });
    const before = await a.until((f) => f.seq >= 5);
    a.close(); // frames still in flight to `a` count as never seen
    await Bun.sleep(200); // steps happen while nobody watches
    const last = before.at(-1)!.seq;
    const b = await socket();
    b.send({ type: "subscribe", id, after: last });
    const after = await b.until((f) => f.type === "result");
    expect(after[0].seq).toBe(last + 1);
    const all = [...before, ...after];
    expect(seqs(all)).toEqual(range(1, 31));
    expect(all.slice(0, 30).map((f) => f.data.step)).toEqual(range(1, 30));
    expect(all[30]).toEqual({ type: "result", id, seq: 31, result: "done" });
    expect(await quiet(b)).toEqual([]);
    b.close();
  });

  test("subscribe to a finished task replays every stored event, byte for byte; `after` skips", async () => {
    const a = await socket();
    const id = await submitOk(a, "r", "countdown", { steps: 3 });
    const live: string[] = [];
    for (let i = 0; i < 4; i++) live.push(await a.nextRaw());
    a.close();
    const b = await socket();
    b.send({ type: "subscribe", id });
    const replay: string[] = [];
    for (let i = 0; i < 4; i++) replay.push(await b.nextRaw());
    expect(replay).toEqual(live);
    b.send({ type: "subscribe", id, after: 0 });
    for (let i = 0; i < 4; i++) expect(await b.nextRaw()).toBe(live[i]!);
    b.send({ type: "subscribe", id, after: 2 });
    expect(await b.nextRaw()).toBe(live[2]!);
    expect(await b.nextRaw()).toBe(live[3]!);
    b.send({ type: "subscribe", id, after: 4 }); // nothing after the final event
    b.send({ type: "subscribe", id, after: 1000 });
    expect(await quiet(b)).toEqual([]);
    expect(numsub(id)).toBe(0);
    b.close();
  });

  test("`after` past the latest event means everything so far was seen: later events, the final one included, still come", async () => {
    const a = await socket();
    const id = await submitOk(a, "p", "countdown", { steps: 10, interval_ms: 40 });
    await a.until((f) => f.seq === 3);
    const b = await socket();
    b.send({ type: "subscribe", id, after: 1_000_000 });
    const got = await b.until((f) => f.type === "result");
    const first = got[0].seq;
    expect(first).toBeGreaterThan(3);
    expect(seqs(got)).toEqual(range(first, 11));
    await waitFor(() => numsub(id) === 0, 3_000, "unsubscribe after the final event");
    a.close();
    b.close();
  });
});

describe("one Redis subscription per task per server", () => {
  test("three watchers share one SUBSCRIBE, which ends when the task is done", async () => {
    const [a, b, c] = await Promise.all([socket(), socket(), socket()]);
    const id = await submitOk(a, "s", "countdown", { steps: 20, interval_ms: 40 });
    b.send({ type: "subscribe", id });
    c.send({ type: "subscribe", id });
    const firsts = await Promise.all([b.next(), c.next()]); // both are watching
    expect(numsub(id)).toBe(1);
    const rest = await Promise.all([a, b, c].map((s) => s.until((f) => f.type === "result")));
    expect(seqs(rest[0]!)).toEqual(range(1, 21));
    expect(seqs([firsts[0]!, ...rest[1]!])).toEqual(range(1, 21));
    expect(seqs([firsts[1]!, ...rest[2]!])).toEqual(range(1, 21));
    await waitFor(() => numsub(id) === 0, 3_000, "unsubscribe after the final event");
    for (const s of [a, b, c]) s.close();
  });

  test("the subscription ends when the last watcher leaves, while the task still runs", async () => {
    const [a, b] = await Promise.all([socket(), socket()]);
    const id = await submitOk(a, "s2", "countdown", { steps: 100, interval_ms: 50 });
    b.send({ type: "subscribe", id });
    await b.next();
    expect(numsub(id)).toBe(1);
    a.close();
    await Bun.sleep(200);
    expect(numsub(id)).toBe(1);
    b.close();
    await waitFor(() => numsub(id) === 0, 3_000, "unsubscribe after the last watcher left");
    expect(hget(id, "state")).toBe("running");
    const c = await socket();
    c.send({ type: "cancel", id });
    await c.until((f) => f.type === "state");
    c.close();
  });
});

describe("idempotency keys", () => {
  test("a key re-sent while its task waits out a retry backoff joins it and does not start the next attempt early", async () => {
    const s = await socket();
    const key = `k-${Math.random().toString(36).slice(2)}`;
    const frame = (ref: string) => ({ type: "submit", ref, task: "fail", args: { message: "again" }, key, options: { retries: 1, backoff_ms: 1_500 } });
    s.send(frame("first"));
    const upToRetry = await s.until((f) => f.type === "queued");
    const id = upToRetry[0].id;
    const retryAt = Date.now() + upToRetry.at(-1).delay_ms; // at least 750 ms away
    s.send(frame("again"));
    const rest = await s.until((f) => f.type === "failed", 10_000);
    expect(rest[0]).toEqual({ type: "accepted", ref: "again", id });
    expect(rest.at(-1).error.code).toBe("exhausted");
    // The second attempt started when its backoff was over, not when the key came back.
    expect(Number(hget(id, "started"))).toBeGreaterThanOrEqual(retryAt - 50);
    expect(hget(id, "attempts")).toBe("2");
    s.close();
  });

  test("two racing submits with one key, on two sockets, run the task once", async () => {
    const [a, b] = await Promise.all([socket(), socket()]);
    const key = `k-${Math.random().toString(36).slice(2)}`;
    await countsSettled(); // let earlier tests' counts land
    const before = stat("submitted:countdown");
    const frame = (ref: string) => ({ type: "submit", ref, task: "countdown", args: { steps: 3, interval_ms: 30 }, key });
    a.send(frame("a"));
    b.send(frame("b"));
    const [fa, fb] = await Promise.all([a.until((f) => f.type === "result"), b.until((f) => f.type === "result")]);
    const id = fa[0].id;
    expect(fa[0]).toEqual({ type: "accepted", ref: "a", id });
    expect(fb[0]).toEqual({ type: "accepted", ref: "b", id });
    for (const frames of [fa, fb]) expect(seqs(frames.slice(1))).toEqual([1, 2, 3, 4]);
    // Counters are written shortly after (summed over 100 ms).
    await waitFor(() => stat("submitted:countdown") === before + 1, 2_000, "the submit count");
    expect(hget(id, "attempts")).toBe("1");
    expect(cli(stack.redis, "llen", `${prefix}:events:{${id}}`)).toBe("4");

    // Later, on a socket that already saw it end: the same task again, replayed from seq 1, each time.
    for (const ref of ["a2", "a3"]) {
      a.send(frame(ref));
      const again = await a.until((f) => f.type === "result");
      expect(again[0]).toEqual({ type: "accepted", ref, id });
      expect(again.slice(1).map((f) => [f.id, f.seq])).toEqual([1, 2, 3, 4].map((n) => [id, n]));
    }
    expect(await quiet(a)).toEqual([]);
    await countsSettled();
    expect(stat("submitted:countdown")).toBe(before + 1);
    a.close();
    b.close();
  });
});

/** A second server and worker on their own prefix: one task at a time, two in flight per socket. */
let cancelServer: ServerProc;
let cancelWorker: Proc;
let p: string;
beforeAll(async () => {
  p = uniquePrefix("ws-cancel");
  const env = { ...stack.env, TASKWIRE_PREFIX: p, WORKER_CONCURRENCY: "1", MAX_INFLIGHT_PER_SOCKET: "2" };
  [cancelServer, cancelWorker] = await Promise.all([startServer(env), startWorker(env)]);
}, 30_000);
afterAll(async () => {
  await Promise.all([cancelServer?.kill("SIGKILL"), cancelWorker?.kill("SIGKILL")]);
});

describe("cancel (one worker, WORKER_CONCURRENCY=1)", () => {
  const server = () => cancelServer;

  test("queued: never runs; running: ends cancelled and its events stop; finished: answered with its final state", async () => {
    const [a, b] = await Promise.all([socket(server()), socket(server())]);
    const blocker = await submitOk(a, "blocker", "countdown", { steps: 200, interval_ms: 50 });
    await a.until((f) => f.id === blocker && f.seq === 1); // running, holding the only slot
    const victim = await submitOk(a, "victim", "test_task", { task_id: "never" });
    expect(hget(victim, "state", p)).toBe("queued");

    // Queued, cancelled from another socket: `state` answers b; a (the submitter) sees `cancelled`.
    b.send({ type: "cancel", id: victim });
    expect(await b.next()).toEqual({ type: "state", id: victim, state: "cancelled" });
    const onA = await a.until((f) => f.id === victim);
    expect(onA.at(-1)).toEqual({ type: "cancelled", id: victim, seq: 1 });

    // Running: the worker hears it and the task ends cancelled; nothing after that.
    b.send({ type: "cancel", id: blocker });
    expect(await b.next()).toEqual({ type: "state", id: blocker, state: "cancelling" });
    const tail = await a.until((f) => f.type === "cancelled" && f.id === blocker);
    const cancelled = tail.at(-1)!;
    expect(tail.slice(0, -1).every((f) => f.type === "progress" && f.id === blocker)).toBe(true);
    expect(cancelled.seq).toBeLessThan(201);
    expect(await quiet(a, 400)).toEqual([]);
    expect(hget(blocker, "state", p)).toBe("cancelled");
    expect(Number(cli(stack.redis, "llen", `${p}:events:{${blocker}}`))).toBe(cancelled.seq);

    // The freed slot runs the next task; the victim's queue entry was passed over.
    const next = await submitOk(a, "next", "test_task", { task_id: 7 });
    expect(await a.next()).toEqual({ type: "result", id: next, seq: 1, result: 7 });
    expect(hget(victim, "state", p)).toBe("cancelled");
    expect(hget(victim, "attempts", p)).toBe(""); // never started: no attempt counted (a count of 0 is not stored)
    expect(hget(victim, "started", p)).toBe("");
    expect(cli(stack.redis, "llen", `${p}:events:{${victim}}`)).toBe("1");
    expect(cli(stack.redis, "llen", `${p}:{q}:queue`)).toBe("0");

    // Finished: a no-op answered with the final state; no new event.
    b.send({ type: "cancel", id: next });
    expect(await b.next()).toEqual({ type: "state", id: next, state: "succeeded" });
    b.send({ type: "cancel", id: victim });
    expect(await b.next()).toEqual({ type: "state", id: victim, state: "cancelled" });
    expect(await quiet(a)).toEqual([]);
    expect(hget(next, "state", p)).toBe("succeeded");
    expect(cli(stack.redis, "llen", `${p}:events:{${next}}`)).toBe("1");
    a.close();
    b.close();
  });
});

describe("in-flight accounting (MAX_INFLIGHT_PER_SOCKET=2 on the cancel server)", () => {
  test("re-subscribing to a task this socket submitted does not leak an in-flight slot", async () => {
    const a = await socket(cancelServer);
    const first = await submitOk(a, "one", "countdown", { steps: 200, interval_ms: 50 });
    await a.until((f) => f.id === first && f.seq === 1);
    a.send({ type: "subscribe", id: first, after: 1 });
    const second = await submitOk(a, "two", "test_task", { task_id: 2, delay_ms: 10_000 });
    a.send({ type: "submit", ref: "three", task: "test_task", args: { task_id: 3 } });
    const refused = await a.until((f) => f.type === "error");
    expect(refused.at(-1)).toEqual({ type: "error", ref: "three", error: { code: "limit_exceeded", message: "2 tasks already in flight on this socket (MAX_INFLIGHT_PER_SOCKET); wait for some to finish" } });
    a.send({ type: "cancel", id: first });
    await a.until((f) => f.type === "cancelled" && f.id === first);
    const third = await submitOk(a, "three", "test_task", { task_id: 3 });
    // `second` is running now (a sleep with no progress: only the control channel can stop it), `third` queued.
    await waitFor(() => hget(second, "state", p) === "running", 3_000, "the second task to start");
    for (const id of [second, third]) a.send({ type: "cancel", id });
    const ends = new Set<string>();
    await a.until((f) => f.type === "cancelled" && ends.add(f.id).size === 2);
    expect([...ends].sort()).toEqual([second, third].sort());
    expect(hget(second, "state", p)).toBe("cancelled");
    a.close();
  });
});

describe("idle sockets (no frame sent yet)", () => {
  const sockets = () => metric(stack.server.http, "taskwire_sockets");

  test("count as connected, close cleanly, and one that speaks later runs tasks as any other", async () => {
    const before = await sockets();
    const idle = await Promise.all(Array.from({ length: 20 }, () => socket()));
    await waitFor(async () => (await sockets()) === before + 20, 3_000, "the socket gauge to count them");
    // Half leave without a word: their close must not need state they never made.
    for (const s of idle.slice(0, 10)) s.close();
    await waitFor(async () => (await sockets()) === before + 10, 3_000, "the gauge to drop by 10");
    // The rest speak only now: their first frame starts their state (the submit limit, the outbox).
    const ids = await Promise.all(idle.slice(10).map((s, i) => submitOk(s, `late-${i}`, "test_task", { task_id: `late-${i}` })));
    for (const [i, s] of idle.slice(10).entries()) {
      expect(await s.next()).toEqual({ type: "result", id: ids[i], seq: 1, result: `late-${i}` });
      s.close();
    }
    await waitFor(async () => (await sockets()) === before, 3_000, "the gauge back where it was");
    expect(stack.server.output()).not.toMatch(/error|TypeError/i);
  });
});

describe("lib/feeds.ts, in process against the test Redis", () => {
  test("an event heard while a gap is being read from the log is read too, not lost", async () => {
    const log = makeLogger("feeds-test", "silent");
    const [redis, sub] = [createRedis(stack.redis.url, "command", log, "feeds-test"), createRedis(stack.redis.url, "subscriber", log, "feeds-test")];
    await Promise.all([waitReady(redis, 5_000), waitReady(sub, 5_000)]);
    const keys = makeKeys(uniquePrefix("feeds"));
    const feeds = new Feeds(sub, new Queue(redis, keys, { ttlS: 60, maxArgsBytes: 1024 }), keys, log);
    const id = "01a21376-5815-75c7-8f41-4eced6e77c58";
    const entry = (n: number) => `${n} p {"type":"progress","id":"${id}","seq":${n},"data":${n}}`;
    try {
      await redis.hset(keys.task(id), "state", "running", "seq", 7);
      await redis.rpush(keys.events(id), entry(1), entry(2), entry(3));
      const got: number[] = [];
      const w = { sent: 0, deliver: (e: { seq: number }) => void got.push(e.seq) };
      expect(await feeds.watch(id, w)).toBe(true);
      expect(got).toEqual([1, 2, 3]);
      await redis.rpush(keys.events(id), entry(4), entry(5), entry(6));
      // 4 and 5 were never heard (pub/sub lost them): hearing 6 starts a log read. 7 is heard while that
      // read is in flight and stored only after it (same connection, so in this order).
      const onMessage = (feeds as unknown as { onMessage(ch: string, m: string): void }).onMessage.bind(feeds);
      onMessage(keys.channel(id), entry(6));
      onMessage(keys.channel(id), entry(7));
      await redis.rpush(keys.events(id), entry(7));
      await waitFor(() => got.length === 7, 2_000, "event 7");
      expect(got).toEqual([1, 2, 3, 4, 5, 6, 7]);
      feeds.unwatch(id, w);
      expect(feeds.size).toBe(0);
    } finally {
      await redis.del(keys.task(id), keys.events(id));
      await Promise.all([redis.quit(), sub.quit()]);
    }
  });
});
