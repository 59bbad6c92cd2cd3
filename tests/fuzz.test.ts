/**
 * Hostile input: fixed cases (prototype keys, huge numbers, deep nesting) and property-based fuzzing
 * (fast-check) of /ws and /async_task/ with random and mutated frames. Afterwards a normal task still
 * round-trips, the server is alive, and its memory is back near where it started.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { type Stack, startStack } from "./helpers/stack.ts";
import { type TestSocket, openSocket } from "./helpers/ws.ts";

/** PROTOCOL.md section 2: the only codes an /ws `error` may carry. */
const WS_CODES = ["bad_json", "bad_request", "unknown_type", "unknown_task", "invalid_args", "not_found", "too_large", "rate_limited", "limit_exceeded", "unavailable", "unauthorized"];
/** PROTOCOL.md section 1 rows, plus too_large for frames over MAX_JSON_DEPTH. */
const SEED_CODES = ["bad_json", "bad_request", "missing_param", "unknown_task", "invalid_args", "task_failed", "too_large"];
const EVENT_TYPES = ["progress", "queued", "result", "failed", "cancelled", "state"];

let stack: Stack;
beforeAll(async () => {
  stack = await startStack("fuzz", { workers: 1 });
});
afterAll(async () => {
  await stack?.stop();
});

const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${stack.server.pid}/status`, "utf8"))?.[1]) * 1024;

// --- arbitraries ---
// Every task a frame can start is short: no delay_ms/steps/interval_ms beyond a few, so the worker stays free.

const shortArgs = fc.oneof(
  fc.record({ task_id: fc.oneof(fc.string(), fc.integer(), fc.double(), fc.constant(null), fc.boolean(), fc.constant(0)), delay_ms: fc.oneof(fc.integer({ min: -3, max: 3 }), fc.constant(3_600_001), fc.string({ maxLength: 3 })) }, { requiredKeys: [] }),
  fc.record({ steps: fc.oneof(fc.integer({ min: -1, max: 3 }), fc.constant(10_001), fc.double({ noDefaultInfinity: true })), interval_ms: fc.integer({ min: -1, max: 2 }) }, { requiredKeys: [] }),
  fc.record({ message: fc.oneof(fc.string(), fc.integer()) }, { requiredKeys: [] }),
  fc.dictionary(fc.constantFrom("__proto__", "constructor", "prototype", "task_id", "toString", "message", "x", ""), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 }),
);
const taskName = fc.constantFrom("test_task", "countdown", "fail", "nope", "__proto__", "constructor", "toString", "", "TEST_TASK");
const anyValue = fc.oneof(fc.string({ maxLength: 40 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.jsonValue({ maxDepth: 2 }));
const taskIdLike = fc.oneof(fc.uuid({ version: 7 }), fc.string({ maxLength: 70 }), fc.integer(), fc.constant("../../etc/passwd"));

/** Frames shaped like the protocol, with every field sometimes wrong. */
const structured = fc.oneof(
  fc.record({ type: fc.constant("submit"), ref: fc.oneof(fc.string({ maxLength: 130 }), anyValue), task: fc.oneof(taskName, anyValue), args: fc.oneof(shortArgs, anyValue), key: fc.oneof(fc.string({ maxLength: 8 }), fc.integer()), options: fc.oneof(fc.record({ retries: fc.integer({ min: -1, max: 0 }), timeout_ms: fc.integer({ min: -1, max: 50 }) }, { requiredKeys: [] }), anyValue) }, { requiredKeys: ["type"] }),
  fc.record({ type: fc.constant("subscribe"), id: taskIdLike, after: fc.oneof(fc.integer({ min: -2, max: 5 }), fc.double(), fc.string({ maxLength: 3 })) }, { requiredKeys: ["type"] }),
  fc.record({ type: fc.constant("cancel"), id: taskIdLike }, { requiredKeys: ["type"] }),
  fc.record({ type: fc.oneof(fc.constantFrom("SUBMIT", "", "__proto__", "constructor", "hasOwnProperty", "ping"), anyValue), ref: fc.string({ maxLength: 10 }), id: fc.string({ maxLength: 10 }) }, { requiredKeys: [] }),
).map((o) => JSON.stringify(o));

const deep = (n: number, open: string, close: string, inner = "1") => open.repeat(n) + inner + close.repeat(n);
/** Hand-picked nasties: deep nesting, numbers JSON cannot hold, prototype keys, odd escapes. */
const hostile = fc.constantFrom(
  deep(100_000, "[", "]", ""), deep(65, '{"a":', "}"), deep(63, "[", "]"), deep(5_000, '{"type":"submit","x":', "}"),
  '{"type":"submit","ref":"h1","task":"test_task","args":{"task_id":1e400}}',
  '{"type":"submit","ref":"h2","task":"test_task","args":{"task_id":-1e400}}',
  '{"type":"submit","ref":"h3","task":"test_task","args":{"task_id":123456789012345678901234567890}}',
  '{"type":"submit","ref":"h4","task":"countdown","args":{"steps":1e308}}',
  '{"type":"subscribe","id":"0193f7c2-6d1e-7a51-9c3e-41f0d2b8a9e4","after":1e400}',
  '{"type":"subscribe","id":"0193f7c2-6d1e-7a51-9c3e-41f0d2b8a9e4","after":9007199254740993}',
  '{"__proto__":{"type":"submit","ref":"p","task":"test_task","args":{"task_id":1}}}',
  '{"type":"submit","ref":"p2","task":"test_task","__proto__":{"args":{"task_id":9}},"args":{"task_id":2}}',
  '{"type":"submit","ref":"p3","task":"test_task","args":{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"task_id":3}}',
  '{"type":"submit","ref":"dup","ref":"dup2","task":"test_task","args":{"task_id":4}}',
  '{"type":"\\u0073ubmit","ref":"esc","task":"test\\u005ftask","args":{"task_id":"\\ud800"}}',
  "\u0000", "", " ", "{", "}", "[]", "null", "true", "-0", "1e999", '"\\', '"\\u12"', "{\"type\":\"submit\"" + ",".repeat(1000) + "}",
);

const VALID = [
  '{"type":"submit","ref":"v","task":"test_task","args":{"task_id":1}}',
  '{"type":"submit","ref":"w","task":"countdown","args":{"steps":2}}',
  '{"type":"subscribe","id":"0193f7c2-6d1e-7a51-9c3e-41f0d2b8a9e4","after":1}',
  '{"type":"cancel","id":"0193f7c2-6d1e-7a51-9c3e-41f0d2b8a9e4"}',
];
/** Valid frames with bytes deleted, inserted, replaced, or cut short. */
const mutated = fc.tuple(fc.constantFrom(...VALID), fc.array(fc.tuple(fc.constantFrom("del", "ins", "rep", "cut"), fc.nat(), fc.string({ unit: "binary", minLength: 1, maxLength: 3 })), { minLength: 1, maxLength: 4 }))
  .map(([frame, edits]) => edits.reduce((s, [op, at, ch]) => {
    const i = at % (s.length + 1);
    return op === "del" ? s.slice(0, i) + s.slice(i + 1) : op === "ins" ? s.slice(0, i) + ch + s.slice(i) : op === "rep" ? s.slice(0, i) + ch + s.slice(i + 1) : s.slice(0, i);
  }, frame))
  // A mutated ref/args could in principle form a long-running task: keep only frames that cannot.
  .filter((s) => !/delay_ms|interval_ms/.test(s));

const wsText = fc.oneof(
  { weight: 4, arbitrary: structured },
  { weight: 3, arbitrary: mutated },
  { weight: 1, arbitrary: fc.json({ maxDepth: 4 }).filter((s) => !/delay_ms|interval_ms|steps/.test(s)) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 200 }) },
  { weight: 1, arbitrary: hostile },
);
const wsFrame = fc.oneof({ weight: 12, arbitrary: wsText }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) });

// --- /ws checking ---

interface Tracker {
  /** Task ids accepted on this socket, and whether their terminal event came. */
  tasks: Map<string, boolean>;
  errors: Map<string, number>;
}

/** The next answer to a request (error or accepted), recording the task events that come in between. */
async function nextAnswer(s: TestSocket, t: Tracker): Promise<any> {
  for (;;) {
    const f = await s.next(5_000);
    expect(typeof f === "object" && f !== null && typeof f.type === "string").toBe(true);
    if (f.type === "error" || f.type === "accepted") return f;
    expect(EVENT_TYPES).toContain(f.type);
    if (f.type === "result" || f.type === "failed" || f.type === "cancelled") {
      expect(t.tasks.get(f.id)).toBe(false); // the terminal event comes once, after accepted
      t.tasks.set(f.id, true);
    }
  }
}

function checkAnswer(answer: any, sent: string | Uint8Array, t: Tracker): void {
  if (answer.type === "error") {
    expect(WS_CODES).toContain(answer.error.code);
    expect(typeof answer.error.message).toBe("string");
    expect(answer.error.message.length).toBeGreaterThan(0);
    t.errors.set(answer.error.code, (t.errors.get(answer.error.code) ?? 0) + 1);
    if (typeof sent !== "string") expect(answer.error.code).toBe("bad_json");
    return;
  }
  expect(typeof sent).toBe("string");
  const frame = JSON.parse(sent as string);
  // WebSocket.send encodes a string as UTF-8, turning lone surrogates into U+FFFD: that is the ref the server got.
  expect(answer.ref).toBe(typeof frame.ref === "string" ? frame.ref.toWellFormed() : frame.ref);
  // A key seen before joins its task: a finished one is replayed, so one more terminal event is owed.
  t.tasks.set(answer.id, false);
}

/** Drains frames until every accepted task on this socket has had its terminal event. */
async function awaitTerminals(s: TestSocket, t: Tracker): Promise<void> {
  const deadline = Date.now() + 20_000;
  while ([...t.tasks.values()].some((done) => !done)) {
    if (Date.now() > deadline) throw new Error(`tasks without a terminal event: ${[...t.tasks].filter(([, d]) => !d).map(([id]) => id).join(" ")}`);
    const f = await s.next(5_000);
    if (f.type === "result" || f.type === "failed" || f.type === "cancelled") {
      expect(t.tasks.get(f.id)).toBe(false);
      t.tasks.set(f.id, true);
    }
  }
}

async function roundTrips(): Promise<void> {
  const s = await openSocket(`${stack.server.ws}/ws`);
  s.send({ type: "submit", ref: "after", task: "countdown", args: { steps: 3 } });
  const frames = await s.until((f) => f.type === "result");
  expect(frames.map((f) => f.type)).toEqual(["accepted", "progress", "progress", "progress", "result"]);
  s.close();
  const seed = await openSocket(`${stack.server.ws}/async_task/`);
  seed.send({ task_id: "still-alive" });
  expect((await seed.closed).code).toBe(1000);
  expect(seed.pending()[1]).toBe('{"msg": "success", "flag": true, "data": {"result": "still-alive"}}');
}

// --- tests ---

describe("hostile input, fixed cases", () => {
  test("prototype keys are plain data: the task sees its own args, not an inherited one", async () => {
    const s = await openSocket(`${stack.server.ws}/ws`);
    s.send('{"type":"submit","ref":"p","task":"test_task","args":{"__proto__":{"task_id":"evil"},"constructor":{"prototype":{"polluted":1}},"task_id":"mine"}}');
    const frames = await s.until((f) => f.type === "result" || f.type === "error");
    expect(frames.at(-1)).toMatchObject({ type: "result", result: "mine" });
    s.send('{"__proto__":{"type":"submit"},"ref":"q"}');
    expect(await s.next()).toMatchObject({ type: "error", ref: "q", error: { code: "bad_request" } });
    s.send('{"type":"submit","ref":"r","task":"test_task","args":{"task_id":1},"__proto__":{"task":"fail"}}');
    expect((await s.until((f) => f.type === "result" || f.type === "failed")).at(-1)).toMatchObject({ type: "result", result: 1 });
    s.close();
    const seed = await openSocket(`${stack.server.ws}/async_task/`);
    seed.send('{"task_id":7,"__proto__":{"task":"fail"},"constructor":{"name":"x"}}');
    await seed.closed;
    expect(seed.pending()[1]).toBe('{"msg": "success", "flag": true, "data": {"result": 7}}');
  });

  test("numbers JSON cannot carry exactly get invalid_args or bad_request, never a crash", async () => {
    const s = await openSocket(`${stack.server.ws}/ws`);
    const cases: [string, string][] = [
      ['{"type":"submit","ref":"a","task":"test_task","args":{"task_id":1e400}}', "invalid_args"],
      ['{"type":"submit","ref":"b","task":"countdown","args":{"steps":1e308}}', "invalid_args"],
      ['{"type":"submit","ref":"c","task":"countdown","args":{"steps":2.5}}', "invalid_args"],
      ['{"type":"subscribe","id":"0193f7c2-6d1e-7a51-9c3e-41f0d2b8a9e4","after":1e400}', "bad_request"],
      ['{"type":"subscribe","id":"0193f7c2-6d1e-7a51-9c3e-41f0d2b8a9e4","after":-1}', "bad_request"],
    ];
    for (const [frame, code] of cases) {
      s.send(frame);
      expect([frame, (await s.next()).error?.code]).toEqual([frame, code]);
    }
    // A big integer is a number like any other: test_task hands back what JSON.parse made of it.
    s.send('{"type":"submit","ref":"d","task":"test_task","args":{"task_id":123456789012345678901234567890}}');
    expect((await s.until((f) => f.type === "result")).at(-1).result).toBe(1.2345678901234568e29);
    s.close();
  });

  test("deeply nested arrays and objects get too_large; just under the limit is only a bad request", async () => {
    const s = await openSocket(`${stack.server.ws}/ws`);
    for (const frame of [deep(100_000, "[", "]", ""), deep(65, '{"a":', "}"), `{"type":"submit","ref":"n","task":"test_task","args":{"task_id":${deep(70, "[", "]")}}}`]) {
      s.send(frame);
      expect((await s.next()).error.code).toBe("too_large");
    }
    s.send(deep(63, "[", "]"));
    expect((await s.next()).error.code).toBe("bad_request");
    s.close();
  });
});

test("property: random and mutated frames on /ws always get one answer with a protocol code, and every accepted task ends once", async () => {
  await roundTrips(); // warm up before the baseline
  const rss0 = rss();
  const s = await openSocket(`${stack.server.ws}/ws`);
  const t: Tracker = { tasks: new Map(), errors: new Map() };
  await fc.assert(
    fc.asyncProperty(wsFrame, async (frame) => {
      s.ws.send(frame);
      checkAnswer(await nextAnswer(s, t), frame, t);
    }),
    { numRuns: 2_500, interruptAfterTimeLimit: 25_000 },
  );
  await awaitTerminals(s, t);
  s.close();

  // The same, fired without waiting on four sockets at once: answers still one per frame.
  const frames = fc.sample(wsFrame, { numRuns: 1_200 });
  const sockets = await Promise.all([0, 1, 2, 3].map(() => openSocket(`${stack.server.ws}/ws`)));
  await Promise.all(sockets.map(async (sock, i) => {
    const mine = frames.filter((_, j) => j % 4 === i);
    const tr: Tracker = { tasks: new Map(), errors: new Map() };
    for (const f of mine) sock.ws.send(f);
    for (let k = 0; k < mine.length; k++) {
      const a = await nextAnswer(sock, tr);
      if (a.type === "error") expect(WS_CODES).toContain(a.error.code);
      else tr.tasks.set(a.id, false);
    }
    await Bun.sleep(100);
    expect(sock.pending().filter((p) => /"type":"(error|accepted)"/.test(p))).toEqual([]);
    await awaitTerminals(sock, tr);
    sock.close();
  }));

  expect(stack.server.proc.exitCode).toBeNull();
  await roundTrips();
  await Bun.sleep(500);
  const grown = rss() - rss0;
  console.log(`fuzz /ws: errors by code ${JSON.stringify(Object.fromEntries(t.errors))}, ${t.tasks.size} tasks ran; rss ${(rss0 / 1048576).toFixed(0)} MiB -> +${(grown / 1048576).toFixed(1)} MiB`);
  expect(t.errors.size).toBeGreaterThan(4); // the generators reach many distinct refusals
  expect(grown).toBeLessThan(64 * 1024 * 1024);
}, 90_000);

test("property: random and mutated frames on /async_task/ always get the seed answer and a 1000 close", async () => {
  const rss0 = rss();
  const seedFrame = fc.oneof(
    { weight: 3, arbitrary: fc.record({ task_id: fc.oneof(anyValue, fc.constant(undefined)), task: taskName, args: fc.oneof(shortArgs, anyValue) }, { requiredKeys: [] }).map((o) => JSON.stringify(o)) },
    { weight: 2, arbitrary: wsText },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 32 }) },
  );
  await fc.assert(
    fc.asyncProperty(seedFrame, async (frame) => {
      const s = await openSocket(`${stack.server.ws}/async_task/`);
      s.ws.send(frame);
      const closed = await Promise.race([s.closed, Bun.sleep(10_000).then(() => undefined)]);
      expect(closed?.code).toBe(1000);
      const rows = s.pending().map((r) => JSON.parse(r));
      expect(rows.length === 1 || rows.length === 2).toBe(true);
      for (const r of rows) {
        expect(typeof r.msg).toBe("string");
        expect(typeof r.flag).toBe("boolean");
      }
      const last = rows.at(-1);
      if (last.flag) expect(last).toMatchObject({ msg: "success", data: {} });
      else expect(SEED_CODES).toContain(last.code);
      if (rows.length === 2) expect(rows[0]).toMatchObject({ flag: true, id: expect.any(String) });
    }),
    { numRuns: 400, interruptAfterTimeLimit: 20_000 },
  );
  expect(stack.server.proc.exitCode).toBeNull();
  await roundTrips();
  await Bun.sleep(500);
  expect(rss() - rss0).toBeLessThan(64 * 1024 * 1024);
}, 60_000);
