/** lib/bun-redis.ts and lib/bun-inbox.ts against a real redis-server: the scripts answer as they do through ioredis, a restart loses neither scripts nor the connection's name, an outage fails fast as "Redis down", and the inbox is subscribed again after a cut. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { BunInbox } from "../lib/bun-inbox.ts";
import { BunRedis } from "../lib/bun-redis.ts";
import { isRedisDown } from "../lib/errors.ts";
import { makeKeys } from "../lib/keys.ts";
import { makeLogger } from "../lib/log.ts";
import type { ScriptedRedis } from "../lib/scripts.ts";
import { cli, startRedis, startRedisWithClient, type TestRedis } from "./helpers/redis.ts";
import { uniquePrefix, waitFor } from "./helpers/util.ts";

let file: Awaited<ReturnType<typeof startRedisWithClient>> | undefined;
let redis: TestRedis;
let io: ScriptedRedis;
beforeAll(async () => ({ redis, client: io } = file = await startRedisWithClient("bun-redis-test")));
afterAll(() => file?.stop());

const log = makeLogger("bun-redis-test", "silent");

test("serves one Redis only: a cluster, or a socket URL with db or password, stays on ioredis", () => {
  expect(BunRedis.url("redis://127.0.0.1:6379")).toBe("redis://127.0.0.1:6379");
  expect(BunRedis.url("rediss://user:pw@example.com:6380/2")).toBe("rediss://user:pw@example.com:6380/2");
  expect(BunRedis.url("unix:///run/redis.sock")).toBe("redis+unix:///run/redis.sock");
  expect(BunRedis.url("unix:///run/redis.sock?db=2")).toBeUndefined();
  expect(BunRedis.url("unix:///run/redis.sock?password=pw")).toBeUndefined();
  expect(BunRedis.url("redis+cluster://127.0.0.1:7000,127.0.0.1:7001")).toBeUndefined();
  expect(() => new BunRedis("redis+cluster://127.0.0.1:7000", "command", log, "t")).toThrow("cluster");
});

test("a start and an outcome answer as through ioredis; progress sent before an outcome is stored first, however the scripts got there", async () => {
  const k = makeKeys(uniquePrefix("bunredis"));
  const c = new BunRedis(redis.socketUrl, "command", log, "bun-redis-test");
  await c.connect(5_000);
  try {
    const ids = ["a", "b", "c"];
    for (const id of ids) await io.twEnqueueQueued(k.task(id), k.queue(0), "test_task", '{"task_id":1}', "{}", 60, "", "", id);
    cli(redis, "SCRIPT", "FLUSH"); // as after a restart
    // Not awaited one by one: progress and the outcome go out together, the scripts' first use on this connection.
    await c.script("twStart", [k.task("c"), k.events("c")], ["w1", 60]);
    const sent = [1, 2].map((n) => c.script("twProgress", [k.task("c"), k.events("c"), k.channel("c")], ["c", 1, `{"step":${n}}`, 100, n]));
    sent.push(c.script("twFinish", [k.task("c"), k.events("c"), k.channel("c")], ["c", "succeeded", "3", 60]));
    expect(await Promise.all(sent)).toEqual([1, 2, 3]);
    // Flushed on a live connection: the next call finds no script by its SHA, and sends it.
    cli(redis, "SCRIPT", "FLUSH");
    const bun = await c.script("twStart", [k.task("a"), k.events("a")], ["w1", 60]);
    const viaIo = await io.twStart(k.task("b"), k.events("b"), "w1", 60);
    expect(bun).toEqual([viaIo![0], viaIo![1], viaIo![2], 1, expect.any(String)] as never);
    expect(bun).toEqual(expect.arrayContaining(["test_task", '{"task_id":1}']));
    // Refused (Lua false) and "ours" keep their shapes.
    expect(await c.script("twStart", [k.task("a"), k.events("a")], ["w1", 60])).toBe("ours");
    expect(await c.script("twStart", [k.task("a"), k.events("a")], ["w2", 60])).toBeNull();
    expect(await c.script("twFinish", [k.task("a"), k.events("a"), k.channel("a")], ["a", "succeeded", "1", 60])).toBe(1);
    expect(await io.hget(k.task("a"), "state")).toBe("succeeded");
  } finally {
    c.close();
  }
});

test("while Redis is down a call fails at once as 'Redis down'; once it is back the client reconnects, renamed, and says so", async () => {
  const c = new BunRedis(redis.socketUrl, "command", log, "bun-redis-test");
  const b = new BunRedis(redis.socketUrl, "blocking", log, "bun-redis-test");
  let readies = 0;
  c.onReady = () => readies++;
  await Promise.all([c.connect(5_000), b.connect(5_000)]);
  const k = makeKeys(uniquePrefix("bunredis-down"));
  try {
    await waitFor(() => / name=bun-redis-test:command /.test(cli(redis, "CLIENT", "LIST")), 3_000, "the command connection named");
    const blocked = b.blmove(k.queue(0), k.active("w", 0), 5).then(() => "moved", (err) => err);
    await waitFor(() => / name=bun-redis-test:blocking .*flags=bU? /.test(cli(redis, "CLIENT", "LIST")), 3_000, "the move blocked");
    await redis.kill();
    expect(isRedisDown(await blocked)).toBe(true); // the blocked move ends with its connection: the caller retries
    const started = performance.now();
    const err = await c.script("twStart", [k.task("x"), k.events("x")], ["w", 60]).catch((e: unknown) => e);
    expect(isRedisDown(err)).toBe(true);
    expect(performance.now() - started).toBeLessThan(1_000); // no waiting for Redis to come back
    const before = readies;
    await redis.restart();
    await waitFor(() => readies > before, 10_000, "the reconnect reported");
    expect(await c.script("twStart", [k.task("x"), k.events("x")], ["w", 60])).toBeNull(); // no such task: refused, and the script was sent again
    await waitFor(() => / name=bun-redis-test:command /.test(cli(redis, "CLIENT", "LIST")), 3_000, "the name set again");
    cli(redis, "LPUSH", k.queue(0), "y");
    expect(await b.blmove(k.queue(0), k.active("w", 0), 5)).toBe("y");
  } finally {
    c.close();
    b.close();
  }
});

test("a submit in flight when Redis dies is sent again once Redis is back, as ioredis does; a plain call fails as 'Redis down'", async () => {
  const own = await startRedis({ extraArgs: ["--enable-debug-command", "yes"] });
  const c = new BunRedis(own.socketUrl, "command", log, "bun-redis-test");
  await c.connect(5_000);
  const k = makeKeys(uniquePrefix("bunredis-resent"));
  try {
    const enqueue = (id: string) => [[k.task(id), k.queue(0)], ["test_task", '{"task_id":1}', "{}", 60, "", "", id]] as const;
    // Redis busy for a while: both calls are written and wait unanswered when it dies.
    const sleeping = Bun.spawn(["redis-cli", "-p", String(own.port), "DEBUG", "SLEEP", "1"], { stdout: "ignore", stderr: "ignore" });
    await Bun.sleep(200);
    const resent = c.resent("twEnqueueQueued", ...enqueue("r"));
    const plain = c.script("twEnqueueQueued", ...enqueue("p")).then(() => "answered", (err: unknown) => err);
    await Bun.sleep(200);
    await own.kill();
    await sleeping.exited;
    expect(isRedisDown(await plain)).toBe(true);
    await own.restart();
    expect(await resent).toEqual([1, "queued"]);
    expect(cli(own, "HGET", k.task("r"), "state")).toBe("queued");
    expect(cli(own, "LRANGE", k.queue(0), "0", "-1")).toBe("r");
  } finally {
    c.close();
    await own.stop();
  }
});

test("the inbox on Bun's client: named, subscribed again after its connection is cut, each message heard once", async () => {
  const inbox = new BunInbox(redis.socketUrl, log, "bun-inbox-test");
  await inbox.connect(5_000);
  const heard: string[] = [];
  inbox.on("message", (channel: string, message: string) => heard.push(`${channel} ${message}`));
  // As Feeds does: subscribe at start, and again on every "ready" after the first.
  let readies = 0;
  inbox.on("ready", () => {
    readies++;
    void inbox.subscribe("inbox-ch");
  });
  try {
    await inbox.subscribe("inbox-ch");
    const named = () => cli(redis, "CLIENT", "LIST").split("\n").find((l) => / name=bun-inbox-test:inbox /.test(l));
    await waitFor(() => named() !== undefined, 2_000, "the inbox connection named");
    cli(redis, "PUBLISH", "inbox-ch", "one");
    await waitFor(() => heard.length === 1, 2_000, "the first message");
    expect(inbox.status).toBe("ready");
    for (let cut = 1; cut <= 2; cut++) {
      cli(redis, "CLIENT", "KILL", "ID", /\bid=(\d+)/.exec(named()!)![1]!);
      await waitFor(() => readies === cut && cli(redis, "PUBSUB", "NUMSUB", "inbox-ch").split("\n")[1] === "1", 5_000, `subscribed again after cut ${cut}`);
      await waitFor(() => named() !== undefined, 2_000, `named again after cut ${cut}`);
      cli(redis, "PUBLISH", "inbox-ch", `after-${cut}`);
      await waitFor(() => heard.length === 1 + cut, 2_000, `the message after cut ${cut}`);
    }
    await Bun.sleep(100); // a second listener would have delivered each message twice by now
    expect(heard).toEqual(["inbox-ch one", "inbox-ch after-1", "inbox-ch after-2"]);
  } finally {
    inbox.disconnect();
  }
  expect(inbox.status).toBe("end");
});
