/**
 * The allocator settings (lib/runtime-env.ts): a server or worker started without them restarts in place
 * (same pid and arguments) with them, as mimalloc itself reports; settings an operator gave are kept.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { RUNTIME_ENV, missingRuntimeEnv } from "../lib/runtime-env.ts";
import { type Proc, startServer, startWorker } from "./helpers/procs.ts";
import { type TestRedis, startRedis } from "./helpers/redis.ts";
import { environOf, uniquePrefix } from "./helpers/util.ts";

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

/** Each value mimalloc printed for its option `name` at a start-up, in order (MIMALLOC_VERBOSE=1): one per start. */
function mimallocSaw(output: string, name: string): string[] {
  return [...output.matchAll(new RegExp(`option '${name}': (-?\\d+)`, "g"))].map((m) => m[1]!);
}

async function withProc(start: () => Promise<Proc>, check: (p: Proc) => void): Promise<void> {
  const p = await start();
  try {
    check(p);
  } finally {
    await p.kill("SIGKILL");
  }
}

const env = (extra: Record<string, string> = {}) => ({ REDIS_URL: redis.socketUrl, TASKWIRE_PREFIX: uniquePrefix("rtenv"), MIMALLOC_VERBOSE: "1", ...extra });

test("a server started without the settings restarts in place with them, before it listens", async () => {
  await withProc(() => startServer(env()), (p) => {
    // Two start-ups of the one pid: Bun's default, then ours; the listening process is the pid spawned.
    expect(mimallocSaw(p.output(), "purge_holes")).toEqual(["1", RUNTIME_ENV.MIMALLOC_PURGE_HOLES!]);
    expect(p.output()).toContain(`[server ${p.pid}] listening on`);
    expect(environOf(p.pid)).toMatchObject(RUNTIME_ENV);
  });
}, 30_000);

test("so does a worker, before it takes tasks", async () => {
  await withProc(() => startWorker(env()), (p) => {
    expect(mimallocSaw(p.output(), "purge_holes")).toEqual(["1", RUNTIME_ENV.MIMALLOC_PURGE_HOLES!]);
    expect(p.output()).toContain(`[worker ${p.pid}]`);
    expect(environOf(p.pid)).toMatchObject(RUNTIME_ENV);
  });
}, 30_000);

test("a setting the operator gave is kept, and the process starts once", async () => {
  await withProc(() => startWorker(env({ MIMALLOC_PURGE_HOLES: "1" })), (p) => {
    expect(mimallocSaw(p.output(), "purge_holes")).toEqual(["1"]);
    expect(environOf(p.pid).MIMALLOC_PURGE_HOLES).toBe("1");
  });
}, 30_000);

test("missingRuntimeEnv: a setting given, even empty, is the operator's", () => {
  expect(missingRuntimeEnv({})).toEqual({ ...RUNTIME_ENV });
  expect(missingRuntimeEnv({ MIMALLOC_PURGE_HOLES: "" })).toEqual({});
  expect(missingRuntimeEnv({ ...RUNTIME_ENV })).toEqual({});
});
