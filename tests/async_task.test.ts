/** /async_task/ (PROTOCOL.md sections 1 and 5) against a real redis-server, server and workers. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cli } from "./helpers/redis.ts";
import { type Stack, startStack } from "./helpers/stack.ts";
import { openSocket } from "./helpers/ws.ts";
import { metric, waitFor } from "./helpers/util.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack("seed", { workers: 2 });
});
afterAll(async () => {
  await stack?.stop();
});

/** Sends one raw frame to /async_task/ and returns every frame (raw text) and the close code. */
async function exchange(payload: string | Uint8Array<ArrayBuffer>, query = ""): Promise<{ frames: string[]; code: number }> {
  const s = await openSocket(`${stack.server.ws}/async_task/${query}`);
  s.ws.send(payload);
  const closed = await Promise.race([s.closed, Bun.sleep(10_000).then(() => undefined)]);
  if (!closed) throw new Error("server did not close the socket");
  return { frames: s.pending(), code: closed.code };
}

describe("error rows, English", () => {
  const cases: [string, string | Uint8Array<ArrayBuffer>, string][] = [
    ["not JSON", "{task_id: 1", '{"msg": "invalid parameter format", "flag": false, "code": "bad_json"}'],
    ["binary frame", new Uint8Array([123, 125]), '{"msg": "invalid parameter format", "flag": false, "code": "bad_json"}'],
    ["array", "[]", '{"msg": "invalid parameter format", "flag": false, "code": "bad_request"}'],
    ["null", "null", '{"msg": "invalid parameter format", "flag": false, "code": "bad_request"}'],
    ["zero", "0", '{"msg": "invalid parameter format", "flag": false, "code": "bad_request"}'],
    ["empty string", '""', '{"msg": "invalid parameter format", "flag": false, "code": "bad_request"}'],
    ["false", "false", '{"msg": "invalid parameter format", "flag": false, "code": "bad_request"}'],
    ["task_id absent", "{}", '{"msg": "missing required parameter: task_id", "flag": false, "code": "missing_param"}'],
    ["task_id null", '{"task_id": null}', '{"msg": "missing required parameter: task_id", "flag": false, "code": "missing_param"}'],
    ["task_id empty", '{"task_id": ""}', '{"msg": "missing required parameter: task_id", "flag": false, "code": "missing_param"}'],
  ];
  for (const [name, payload, expected] of cases) {
    test(name, async () => {
      const { frames, code } = await exchange(payload);
      expect(frames).toEqual([expected]);
      expect(code).toBe(1000);
    });
  }

  test("unknown task names the task", async () => {
    const { frames, code } = await exchange('{"task_id": 1, "task": "nope"}');
    expect(frames.length).toBe(1);
    expect(JSON.parse(frames[0]!)).toEqual({ msg: "unknown task: nope", flag: false, code: "unknown_task" });
    expect(code).toBe(1000);
  });

  test("invalid args name the field", async () => {
    const { frames } = await exchange('{"task_id": 1, "delay_ms": -5}');
    const f = JSON.parse(frames[0]!);
    expect(f.code).toBe("invalid_args");
    expect(f.flag).toBe(false);
    expect(f.msg).toContain("delay_ms");
  });
});

describe("error rows, ?lang=zh", () => {
  test("original wording, same codes", async () => {
    expect((await exchange("nope", "?lang=zh")).frames).toEqual(['{"msg": "参数格式有误", "flag": false, "code": "bad_json"}']);
    expect((await exchange("[]", "?lang=zh")).frames).toEqual(['{"msg": "参数格式有误", "flag": false, "code": "bad_request"}']);
    expect((await exchange("{}", "?lang=zh")).frames).toEqual(['{"msg": "缺少必要参数", "flag": false, "code": "missing_param"}']);
    const unknown = JSON.parse((await exchange('{"task_id": 1, "task": "nope"}', "?lang=zh")).frames[0]!);
    expect(unknown.code).toBe("unknown_task");
    expect(unknown.msg).not.toContain("unknown");
  });

  test("success in Chinese", async () => {
    const { frames, code } = await exchange('{"task_id": 7}', "?lang=zh");
    expect(JSON.parse(frames[0]!)).toMatchObject({ msg: "任务7正在执行。。。", flag: true });
    expect(frames[1]).toBe('{"msg": "success", "flag": true, "data": {"result": 7}}');
    expect(code).toBe(1000);
  });

  test("failure in Chinese keeps code task_failed", async () => {
    const { frames } = await exchange('{"task_id": 1, "task": "fail", "message": "坏了"}', "?lang=zh");
    expect(JSON.parse(frames[1]!)).toEqual({ msg: "任务执行失败：坏了", flag: false, code: "task_failed" });
  });
});

describe("success path", () => {
  test("the seed example, byte for byte", async () => {
    const { frames, code } = await exchange('{"task_id": 1}');
    expect(frames.length).toBe(2);
    const ack = JSON.parse(frames[0]!);
    expect(frames[0]).toBe(`{"msg": "task 1 is running...", "flag": true, "id": "${ack.id}"}`);
    expect(ack.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(frames[1]).toBe('{"msg": "success", "flag": true, "data": {"result": 1}}');
    expect(code).toBe(1000);
  });

  test("0 is a valid task_id, and the JSON type is kept", async () => {
    expect((await exchange('{"task_id": 0}')).frames[1]).toBe('{"msg": "success", "flag": true, "data": {"result": 0}}');
    expect((await exchange('{"task_id": "abc"}')).frames[1]).toBe('{"msg": "success", "flag": true, "data": {"result": "abc"}}');
  });

  test("the ack arrives before the result, and delay_ms is honoured", async () => {
    const s = await openSocket(`${stack.server.ws}/async_task/`);
    const t0 = performance.now();
    s.send({ task_id: 3, delay_ms: 300 });
    const ack = await s.next();
    const tAck = performance.now() - t0;
    expect(ack.msg).toBe("task 3 is running...");
    const res = await s.next();
    const tRes = performance.now() - t0;
    expect(res).toEqual({ msg: "success", flag: true, data: { result: 3 } });
    expect(tAck).toBeLessThan(250);
    expect(tRes).toBeGreaterThanOrEqual(300);
    expect((await s.closed).code).toBe(1000);
  });

  test("args merge: fields over args, task_id rides along", async () => {
    const { frames } = await exchange('{"task_id": 5, "task": "test_task", "args": {"task_id": 9, "delay_ms": 1}}');
    expect(frames[1]).toBe('{"msg": "success", "flag": true, "data": {"result": 5}}');
  });

  test("a failing task gives one task_failed row", async () => {
    const { frames, code } = await exchange('{"task_id": 1, "task": "fail", "message": "boom"}');
    expect(frames.length).toBe(2);
    expect(frames[1]).toBe('{"msg": "task failed: boom", "flag": false, "code": "task_failed"}');
    expect(code).toBe(1000);
  });

  test("frames after the first are ignored", async () => {
    const s = await openSocket(`${stack.server.ws}/async_task/`);
    s.send({ task_id: 1 });
    s.send({ task_id: 2 });
    s.send("garbage");
    await s.closed;
    const frames = s.pending();
    expect(frames.length).toBe(2);
    expect(frames[1]).toBe('{"msg": "success", "flag": true, "data": {"result": 1}}');
  });

  test("without the trailing slash too", async () => {
    const s = await openSocket(`${stack.server.ws}/async_task`);
    s.send({ task_id: 11 });
    await s.closed;
    expect(s.pending()[1]).toBe('{"msg": "success", "flag": true, "data": {"result": 11}}');
  });
});

test("two workers share one queue: both run tasks", async () => {
  const n = 40;
  const runs = Array.from({ length: n }, (_, i) => exchange(JSON.stringify({ task_id: i, delay_ms: 50 })));
  const results = await Promise.all(runs);
  results.forEach((r, i) => expect(r.frames[1]).toBe(`{"msg": "success", "flag": true, "data": {"result": ${i}}}`));
  const prefix = stack.env.TASKWIRE_PREFIX!;
  const ids = (await Promise.all(results.map((r) => JSON.parse(r.frames[0]!).id as string)));
  const workersUsed = new Set(ids.map((id) => cli(stack.redis, "hget", `${prefix}:task:{${id}}`, "worker")));
  expect(workersUsed.size).toBe(2);
});

test("instant worker, many sockets: every result arrives", async () => {
  const results = await Promise.all(Array.from({ length: 100 }, (_, i) => exchange(JSON.stringify({ task_id: `x${i}` }))));
  results.forEach((r, i) => expect(r.frames[1]).toBe(`{"msg": "success", "flag": true, "data": {"result": "x${i}"}}`));
});

test("a socket closed early leaves no watch behind; its task is heard on the server's inbox, not its own channel", async () => {
  const prefix = stack.env.TASKWIRE_PREFIX!;
  const watched = () => metric(stack.server.http, "taskwire_task_subscriptions");
  const s = await openSocket(`${stack.server.ws}/async_task/`);
  s.send({ task_id: 1, delay_ms: 2_000 });
  const ack = await s.next();
  const inbox = cli(stack.redis, "hget", `${prefix}:task:{${ack.id}}`, "inbox");
  expect(inbox).toStartWith(`${prefix}:inbox:`);
  expect(cli(stack.redis, "pubsub", "numsub", inbox).split("\n")[1]).toBe("1");
  expect(cli(stack.redis, "pubsub", "shardnumsub", `${prefix}:ch:{${ack.id}}`).split("\n")[1]).toBe("0");
  expect(await watched()).toBe(1);
  s.close();
  await waitFor(async () => (await watched()) === 0, 3_000, "the watch to end");
  // and after a normal finish too
  const { frames } = await exchange('{"task_id": 2}');
  expect(JSON.parse(frames[1]!).flag).toBe(true);
  await waitFor(async () => (await watched()) === 0, 3_000, "the watch to end after the result");
});

test("paths no view serves get 404, for HTTP and WebSocket upgrades", async () => {
  expect((await fetch(`${stack.server.http}/nope`)).status).toBe(404);
  const res = await fetch(`${stack.server.http}/nope`, { headers: { upgrade: "websocket", connection: "upgrade", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13" } });
  expect(res.status).toBe(404);
});
