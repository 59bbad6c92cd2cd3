/**
 * The allocator settings (lib/runtime-env.ts): a server or worker started without them restarts in place
 * (same pid and arguments) with them, as mimalloc itself reports; settings an operator gave are kept.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { RUNTIME_ENV, missingRuntimeEnv } from "../lib/runtime-env.ts";
import { type Proc, startServer, startWorker } from "./helpers/procs.ts";
import { type TestRedis, startRedis } from "./helpers/redis.ts";
import { environOf, mimallocSaw, uniquePrefix } from "./helpers/util.ts";

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

async function withProc(start: () => Promise<Proc>, check: (p: Proc) => void): Promise<void> {
  const p = await start();
  try {
    check(p);
  } finally {
    await p.kill("SIGKILL");
  }
}

const env = (extra: Record<string, string> = {}) => ({ REDIS_URL: redis.socketUrl, TASKWIRE_PREFIX: uniquePrefix("rtenv"), MIMALLOC_VERBOSE: "1", ...extra });
const { MIMALLOC_PURGE_HOLES: holes, MIMALLOC_PURGE_DELAY: delay } = RUNTIME_ENV;

test("a server started without the settings restarts in place with them, before it listens", async () => {
  await withProc(() => startServer(env()), (p) => {
    // Two start-ups of the one pid: Bun's defaults, then ours; the listening process is the pid spawned.
    expect(mimallocSaw(p.output(), "purge_holes")).toEqual(["1", holes!]);
    expect(mimallocSaw(p.output(), "purge_delay")).toEqual(["100", delay!]);
    expect(p.output()).toContain(`[server ${p.pid}] listening on`);
    expect(environOf(p.pid)).toMatchObject(RUNTIME_ENV);
  });
}, 30_000);

test("a worker keeps a setting the operator gave and restarts for the one missing, before it takes tasks", async () => {
  await withProc(() => startWorker(env({ MIMALLOC_PURGE_HOLES: "1" })), (p) => {
    expect(mimallocSaw(p.output(), "purge_holes")).toEqual(["1", "1"]);
    expect(mimallocSaw(p.output(), "purge_delay")).toEqual(["100", delay!]);
    expect(p.output()).toContain(`[worker ${p.pid}]`);
    expect(environOf(p.pid)).toMatchObject({ MIMALLOC_PURGE_HOLES: "1", MIMALLOC_PURGE_DELAY: delay! });
  });
}, 30_000);

test("with every setting given, a worker starts once, with them", async () => {
  await withProc(() => startWorker(env({ MIMALLOC_PURGE_HOLES: "0", MIMALLOC_PURGE_DELAY: "250" })), (p) => {
    expect(mimallocSaw(p.output(), "purge_holes")).toEqual(["0"]);
    expect(mimallocSaw(p.output(), "purge_delay")).toEqual(["250"]);
  });
}, 30_000);

test("missingRuntimeEnv: a setting given, even empty, is the operator's", () => {
  expect(missingRuntimeEnv({})).toEqual({ ...RUNTIME_ENV });
  expect(missingRuntimeEnv({ MIMALLOC_PURGE_HOLES: "" })).toEqual({ MIMALLOC_PURGE_DELAY: delay! });
  expect(missingRuntimeEnv({ ...RUNTIME_ENV })).toEqual({});
});
