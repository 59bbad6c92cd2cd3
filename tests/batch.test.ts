/** lib/batch.ts against a real redis-server: one turn's commands keep their order, and each gets its own reply or error; and ioredis traces only when listened to. */
import dc from "node:diagnostics_channel";
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Batch } from "../lib/batch.ts";
import { isRedisDown } from "../lib/errors.ts";
import { makeLogger } from "../lib/log.ts";
import { createRedis, waitReady } from "../lib/redis.ts";
import type { ScriptedRedis } from "../lib/scripts.ts";
import { type TestRedis, startRedisWithClient } from "./helpers/redis.ts";
import { uniquePrefix } from "./helpers/util.ts";

let file: Awaited<ReturnType<typeof startRedisWithClient>> | undefined;
let redis: TestRedis;
let c: ScriptedRedis;
beforeAll(async () => ({ redis, client: c } = file = await startRedisWithClient("batch-test")));
afterAll(() => file?.stop());

test("commands issued in one turn run in the order issued; a failing one rejects alone", async () => {
  const b = new Batch(c);
  const k = uniquePrefix("batch");
  const replies: Promise<unknown>[] = [
    b.one((r) => r.rpush(`${k}:list`, "a")),
    b.one((r) => r.set(`${k}:str`, "x")),
    b.one((r) => r.incr(`${k}:str`)), // not an integer: an error for this command only
    b.one((r) => r.rpush(`${k}:list`, "b")),
    b.inOrder([(r) => r.rpush(`${k}:list`, "c"), (r) => r.rpush(`${k}:list`, "d")]),
  ];
  const settled = await Promise.allSettled(replies);
  expect(settled.map((s) => s.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled", "fulfilled"]);
  expect((settled[2] as PromiseRejectedResult).reason.message).toContain("not an integer");
  expect(settled[4]).toEqual({ status: "fulfilled", value: [3, 4] });
  expect(await c.lrange(`${k}:list`, 0, -1)).toEqual(["a", "b", "c", "d"]);
  // A command alone in its turn is sent as is.
  expect(await b.one((r) => r.get(`${k}:str`))).toBe("x");
  await c.del(`${k}:list`, `${k}:str`);
});

test("a command alone in its turn goes its own way when it has one; commands that share a turn leave as the pipeline", async () => {
  const b = new Batch(c);
  const k = uniquePrefix("batch-alone");
  const alone: string[] = [];
  const send = (v: string) => b.one((r) => r.rpush(`${k}:list`, v), async () => (alone.push(v), await c.rpush(`${k}:list`, `${v}(alone)`)));
  expect(await send("a")).toBe(1);
  expect(await Promise.all([send("b"), send("c")])).toEqual([2, 3]);
  expect(alone).toEqual(["a"]);
  expect(await c.lrange(`${k}:list`, 0, -1)).toEqual(["a(alone)", "b", "c"]);
  await c.del(`${k}:list`);
});

test("while Redis is unreachable every command of the batch fails at once as 'Redis down'", async () => {
  const lone = createRedis(redis.url, "command", makeLogger("batch-test", "silent"), "batch-test");
  await waitReady(lone, 5_000);
  lone.disconnect();
  const b = new Batch(lone);
  const settled = await Promise.allSettled([b.one((r) => r.get("a")), b.one((r) => r.get("b"))]);
  for (const s of settled) {
    expect(s.status).toBe("rejected");
    expect(isRedisDown((s as PromiseRejectedResult).reason)).toBe(true);
  }
});

test("ioredis traces a command only while someone listens (lib/tracing-channel-fix.ts gives Bun's TracingChannel hasSubscribers)", async () => {
  const channel = dc.tracingChannel("ioredis:command");
  expect(channel.hasSubscribers).toBe(false);
  const seen: string[] = [];
  const handlers = { start: (ctx: unknown) => void seen.push(String((ctx as { command: string }).command)) };
  channel.subscribe(handlers);
  try {
    expect(channel.hasSubscribers).toBe(true);
    await c.ping();
  } finally {
    channel.unsubscribe(handlers);
  }
  expect(seen).toContain("ping");
  expect(channel.hasSubscribers).toBe(false);
});
