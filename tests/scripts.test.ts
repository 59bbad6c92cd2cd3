/**
 * The queue's scripts against a real redis-server: what take_start.lua (one Redis) starts, skips and drops,
 * the same as take.lua then start.lua; what enqueue tells a submit that lost a race on its own key, and
 * when the one-Redis submit script queues an id.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { makeKeys } from "../lib/keys.ts";
import { Queue } from "../lib/queue.ts";
import type { ScriptedRedis } from "../lib/scripts.ts";
import { startRedisWithClient } from "./helpers/redis.ts";
import { uniquePrefix } from "./helpers/util.ts";

let file: Awaited<ReturnType<typeof startRedisWithClient>> | undefined;
let c: ScriptedRedis;
beforeAll(async () => ({ client: c } = file = await startRedisWithClient("scripts-test")));
afterAll(() => file?.stop());

/** Redis's clock (ms): the one every stored time is on. */
async function redisNow(): Promise<number> {
  const [s, us] = await c.time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

/** Four queue entries: a, b (cancelled while queued), a again (a duplicate entry), c. */
async function seed(prefix: string) {
  const k = makeKeys(prefix);
  for (const id of ["a", "b", "c"]) await c.twEnqueue(k.task(id), "test_task", `{"task_id":"${id}"}`, "{}", 60, "", "");
  await c.twCancel(k.task("b"), k.events("b"), k.channel("b"), "b", 60);
  await c.lpush(k.queue(), "c", "a", "b", "a"); // taken from the right, oldest first: c, a, b, a
  return k;
}

test("take_start takes up to n ids, starts the startable ones once, and keeps only those in the processing list", async () => {
  const k = await seed(uniquePrefix("take-start"));
  const active = k.active("w1");
  await c.rpush(active, "old"); // an id whose outcome is written: dropped by this take
  const rows = await c.twTakeStart(k.queue(), active, 3, "w1", 60, k.task(""), k.events(""), "old");
  // Three taken (c, a, b); b is cancelled and skipped; each started row is id, task, args, opts, attempt.
  expect(rows).toEqual([3, 0, "c", "test_task", '{"task_id":"c"}', "{}", 1, "a", "test_task", '{"task_id":"a"}', "{}", 1]);
  expect(await c.lrange(active, 0, -1)).toEqual(["a", "c"]);
  expect(await c.hmget(k.task("a"), "state", "worker", "attempts")).toEqual(["running", "w1", "1"]);
  expect(Math.abs(Number(await c.hget(k.task("a"), "started")) - (await redisNow()))).toBeLessThan(5_000);
  expect(await c.hget(k.task("b"), "state")).toBe("cancelled");
  // The duplicate entry of a is taken but not started again: w1 runs a already, so the entry stays in its
  // list, counted as ours, for its audit (see starting.lua); the queue is then empty.
  expect(await c.twTakeStart(k.queue(), active, 5, "w1", 60, k.task(""), k.events(""))).toEqual([1, 1]);
  expect(await c.lrange(active, 0, -1)).toEqual(["a", "a", "c"]);
  expect(await c.hget(k.task("a"), "attempts")).toBe("1");
  expect(await c.llen(k.queue())).toBe(0);
  // Taken by another worker, the same duplicate is refused and leaves that worker's list.
  await c.lpush(k.queue(), "a");
  expect(await c.twTakeStart(k.queue(), k.active("w2"), 5, "w2", 60, k.task(""), k.events(""))).toEqual([1, 0]);
  expect(await c.llen(k.active("w2"))).toBe(0);
  expect(await c.hmget(k.task("a"), "worker", "attempts")).toEqual(["w1", "1"]);
});

test("take then start (the cluster path) ends in the same state", async () => {
  const k = await seed(uniquePrefix("take-then-start"));
  const active = k.active("w1");
  const taken = await c.twTake(k.queue(), active, 4);
  expect(taken).toEqual(["c", "a", "b", "a"]);
  const started = [];
  for (const id of taken) started.push(await c.twStart(k.task(id), k.events(id), "w1", 60));
  const created = async (id: string) => (await c.hget(k.task(id), "created"))!;
  expect(started).toEqual([["test_task", '{"task_id":"c"}', "{}", 1, await created("c")], ["test_task", '{"task_id":"a"}', "{}", 1, await created("a")], null, "ours"]);
  expect(await c.hmget(k.task("a"), "state", "worker", "attempts")).toEqual(["running", "w1", "1"]);
  const started1 = await c.hget(k.task("a"), "started");
  await Bun.sleep(5);
  // A start sent again (its reply lost) does not count a second attempt; another worker's is refused.
  expect(await c.twStart(k.task("a"), k.events("a"), "w1", 60)).toBe("ours");
  expect(await c.twStart(k.task("a"), k.events("a"), "w2", 60)).toBeNull();
  expect(await c.hmget(k.task("a"), "worker", "attempts", "started")).toEqual(["w1", "1", started1]);
});

test("a submit whose key's task was created by a racing submit's repair step hears created: false (so /ws watches it as an existing task)", async () => {
  // The interleaving, fixed: submit A claims key K for id X (SET NX); submit B reads X from K and, as repair,
  // creates X itself, without A's inbox; only then does A's own create run.
  const k = makeKeys(uniquePrefix("key-race"));
  const queue = new Queue(c, k, { ttlS: 60, maxArgsBytes: 1024 });
  const v = queue.validate({ task: "test_task", args: { task_id: 1 }, key: "K" });
  const x = "0193f7c2-6d1e-7a51-9c3e-41f0d2b8a9e4";
  await c.set(k.idem("K"), x, "EX", 60, "NX");
  // B, with its own id Y and inbox: it joins X and, as repair, creates it (without any inbox: X is not B's).
  expect(await queue.enqueue(v, "0193f7c2-6d1e-7a51-9c3e-41f0d2b8a9e5", "inbox-of-B")).toEqual({ id: x, created: true });
  expect(await queue.enqueue(v, x, "inbox-of-A")).toEqual({ id: x, created: false }); // A: its own id, not created
  expect(await c.hget(k.task(x), "inbox")).toBeNull(); // no inbox: so A must not wait on one; views/ws.ts joins X instead
  expect(await c.lrange(k.queue(), 0, -1)).toEqual([x, x]); // a duplicate entry, which start.lua skips
});

test("a progress report sent twice (a client's resend after a dropped connection) is stored once", async () => {
  const k = makeKeys(uniquePrefix("progress-once"));
  await c.twEnqueue(k.task("p"), "countdown", "{}", "{}", 60, "", "");
  expect(await c.twStart(k.task("p"), k.events("p"), "w1", 60)).not.toBeNull();
  const report = (n: number, data: string) => c.twProgress(k.task("p"), k.events("p"), k.channel("p"), "p", 1, data, 100, n);
  expect(await report(1, '"a"')).toBe(1);
  expect(await report(1, '"a"')).toBe(0); // the resend
  expect(await report(2, '"b"')).toBe(2);
  expect(await c.lrange(k.events("p"), 0, -1)).toEqual(['1 p {"type":"progress","id":"p","seq":1,"data":"a"}', '2 p {"type":"progress","id":"p","seq":2,"data":"b"}']);
});

test("on one Redis a submit stores and queues its task in one script: queued again only while it still waits in the queue", async () => {
  const k = makeKeys(uniquePrefix("enqueue-queued"));
  const enqueue = (id: string) => c.twEnqueueQueued(k.task(id), k.queue(), "test_task", `{"task_id":"${id}"}`, "{}", 60, "", "", id);
  expect(await enqueue("a")).toEqual([1, "queued"]);
  expect(await c.lrange(k.queue(), 0, -1)).toEqual(["a"]);
  expect(await c.hmget(k.task("a"), "state", "args")).toEqual(["queued", '{"task_id":"a"}']);
  expect(await c.ttl(k.task("a"))).toBeGreaterThan(0);
  // The same submit again (a resend, or a repair of a cluster submit that stopped half-way): a duplicate
  // entry, which starting.lua skips; the task itself is not written twice.
  expect(await enqueue("a")).toEqual([0, "queued"]);
  expect(await c.lrange(k.queue(), 0, -1)).toEqual(["a", "a"]);
  // Started, finished, or waiting out a retry's backoff: never queued again (it would run twice or early).
  await c.del(k.queue());
  expect(await c.twStart(k.task("a"), k.events("a"), "w1", 60)).not.toBeNull();
  expect(await enqueue("a")).toEqual([0, "running"]);
  await c.hset(k.task("a"), "state", "queued", "due", (await redisNow()) + 60_000);
  expect(await enqueue("a")).toEqual([0, "delayed"]);
  await c.hset(k.task("a"), "state", "succeeded");
  expect(await enqueue("a")).toEqual([0, "succeeded"]);
  expect(await c.llen(k.queue())).toBe(0);
});
