/**
 * The one binary (issue 8): scripts/build.ts compiles a copy of the tree, the copy is deleted, and the binary
 * runs alone from an empty directory: `serve` + `worker` on a private redis-server, and `start` with its own
 * embedded one. Seed flow, /ws countdown, dashboard, /client.js, every view and task, and the CLI inside it.
 * The slowest test file: it builds.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { loadConfig } from "../lib/config.ts";
import { RUNTIME_ENV } from "../lib/runtime-env.ts";
import { listViews } from "../lib/views-plugin.ts";
import { tasks } from "../tasks/index.ts";
import { run, spawnKept } from "./helpers/cli.ts";
import { ROOT } from "./helpers/procs.ts";
import { ping, startRedis, type TestRedis } from "./helpers/redis.ts";
import { cmdlineOf, environOf, freePort, mimallocSaw, uniquePrefix, waitFor } from "./helpers/util.ts";
import { openSocket } from "./helpers/ws.ts";

/** WORKER_CONCURRENCY when unset. */
const DEFAULT_CONCURRENCY = loadConfig({}).WORKER_CONCURRENCY;

const temps: string[] = [];
const tempDir = (name: string) => {
  const d = mkdtempSync(join(tmpdir(), `taskwire-${name}-`));
  temps.push(d);
  return d;
};

/** The built binary, alone in an otherwise empty directory. */
let bin: string;
let buildLog: string;

beforeAll(async () => {
  // Build from a copy of the tree, then delete the copy: a binary that still read any source file at run time fails below.
  const src = tempDir("binsrc");
  const skip = new Set(["node_modules", "dist", ".git", ".taskwire", "tests"]);
  for (const e of readdirSync(ROOT)) if (!skip.has(e)) cpSync(join(ROOT, e), join(src, e), { recursive: true });
  Bun.spawnSync(["cp", "-al", join(ROOT, "node_modules"), join(src, "node_modules")]); // hard links: instant, and gone with the copy
  const out = tempDir("binout");
  const built = await run([process.execPath, "run", join(src, "scripts", "build.ts"), "--outfile", join(out, "taskwire")], {
    cwd: src,
    env: { GIT_DIR: join(ROOT, ".git") }, // the copy has no .git; its commit is the checkout's
    timeoutMs: 150_000,
  });
  buildLog = built.stdout + built.stderr;
  if (built.code !== 0) throw new Error(`build failed (${built.code}):\n${buildLog}`);
  rmSync(src, { recursive: true, force: true });
  bin = join(tempDir("bin"), "taskwire");
  copyFileSync(join(out, "taskwire"), bin);
  Bun.spawnSync(["chmod", "+x", bin]);
}, 180_000);

afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

/** A long-running child of the binary. */
function spawnBin(args: string[], cwd: string, env: Record<string, string>) {
  return spawnKept([bin, ...args], { cwd, env: { LOG_LEVEL: "info", ...env } });
}

async function healthy(port: number, what: () => string, exited: () => boolean) {
  await waitFor(async () => {
    if (exited()) throw new Error(`exited early:\n${what()}`);
    return fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status === 200, () => false);
  }, 20_000, `binary server on ${port}\n${what()}`);
}

async function seedFlow(port: number) {
  const s = await openSocket(`ws://127.0.0.1:${port}/async_task/`);
  s.send('{"task_id": 1}');
  expect(JSON.parse(await s.nextRaw(10_000))).toMatchObject({ msg: "task 1 is running...", flag: true });
  expect(await s.nextRaw(10_000)).toBe('{"msg": "success", "flag": true, "data": {"result": 1}}');
  expect((await s.closed).code).toBe(1000);
}

async function wsCountdown(port: number) {
  const s = await openSocket(`ws://127.0.0.1:${port}/ws`);
  s.send({ type: "submit", ref: "r1", task: "countdown", args: { steps: 3 } });
  const frames = await s.until((f) => f.type === "result" || f.type === "failed" || f.type === "error", 10_000);
  s.close();
  const id = frames[0].id;
  expect(frames).toEqual([
    { type: "accepted", ref: "r1", id },
    ...[1, 2, 3].map((step) => ({ type: "progress", id, seq: step, data: { step, of: 3 } })),
    { type: "result", id, seq: 4, result: "done" },
  ]);
}

test("the build names the version, the commit and every view", () => {
  expect(buildLog).toContain(`taskwire ${pkg.version}`);
  expect(buildLog).toContain(`${listViews().size} views`);
});

test("--version prints package.json's version and the commit it was built from", async () => {
  const head = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: ROOT }).stdout.toString().trim();
  const r = await run([bin, "--version"], { cwd: tempDir("ver") });
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(new RegExp(`^taskwire ${pkg.version.replace(/\./g, "\\.")} \\(commit ${head}(-dirty)?, built \\d{4}-\\d\\d-\\d\\dT`));
});

describe("taskwire serve + taskwire worker from an empty directory", () => {
  let redis: TestRedis;
  let port: number;
  let server: ReturnType<typeof spawnBin>;
  let worker: ReturnType<typeof spawnBin>;
  let cwd: string;

  beforeAll(async () => {
    redis = await startRedis();
    port = await freePort();
    cwd = tempDir("run");
    const env = { REDIS_URL: redis.url, TASKWIRE_PREFIX: uniquePrefix("bin"), PORT: String(port) };
    server = spawnBin(["serve"], cwd, env);
    worker = spawnBin(["worker"], cwd, env);
    await healthy(port, server.output, () => server.proc.exitCode !== null);
    await waitFor(() => worker.output().includes("taking tasks"), 15_000, `binary worker\n${worker.output()}`);
  }, 60_000);

  afterAll(async () => {
    for (const p of [server, worker]) {
      p?.proc.kill("SIGKILL");
      await p?.proc.exited;
    }
    await redis?.stop();
  });

  test("serve and worker restarted in place with the allocator settings, same arguments (lib/runtime-env.ts)", () => {
    for (const [p, cmd] of [[server, "serve"], [worker, "worker"]] as const) {
      expect(cmdlineOf(p.proc.pid)).toEqual([bin, cmd]);
      expect(environOf(p.proc.pid)).toMatchObject(RUNTIME_ENV);
    }
  });

  test("every view in views/ and every task in tasks/ is inside", async () => {
    const views = /views: (.*)$/m.exec(server.output())?.[1]?.split(" ").sort();
    expect(views).toEqual([...listViews().keys()].sort());
    const schema = (await (await fetch(`http://127.0.0.1:${port}/tasks/schema`)).json()) as { name: string }[];
    expect(schema.map((t) => t.name).sort()).toEqual(Object.keys(tasks).sort());
    expect(worker.output()).toContain(`tasks: ${Object.keys(tasks).join(" ")}`);
  });

  test("the /async_task/ seed flow", () => seedFlow(port));

  test("a /ws countdown", () => wsCountdown(port));

  test.if(existsSync(join(ROOT, "views", "index.ts")))("GET / serves the dashboard", async () => {
    const r = await fetch(`http://127.0.0.1:${port}/`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toStartWith("text/html");
    expect(await r.text()).toContain("<html");
  });

  test("GET /client.js serves the SDK bundle", async () => {
    const r = await fetch(`http://127.0.0.1:${port}/client.js`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toStartWith("text/javascript");
    const js = await r.text();
    expect(js).toMatch(/export\s*\{[^}]*\bconnect\b/);
  });

  test("the CLI inside it: submit, workers, queues", async () => {
    const env = { TASKWIRE_URL: `http://127.0.0.1:${port}` };
    const sub = await run([bin, "submit", "countdown", "--args", '{"steps": 2}'], { cwd, env });
    expect(sub.stdout).toBe('"done"\n');
    expect(sub.code).toBe(0);
    const failed = await run([bin, "submit", "fail", "--args", '{"message": "from the binary"}'], { cwd, env });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain("from the binary");
    const workers = JSON.parse((await run([bin, "workers", "--json"], { cwd, env })).stdout) as { pid: number }[];
    expect(workers.map((w) => w.pid)).toEqual([worker.proc.pid]);
    const queues = await run([bin, "queues", "--json"], { cwd, env });
    expect(JSON.parse(queues.stdout)).toMatchObject({ workers: 1, slots: DEFAULT_CONCURRENCY });
  });

  test("it wrote nothing into its directory", () => {
    expect(readdirSync(cwd)).toEqual([]);
  });
});

test("taskwire start: an embedded redis-server, server and worker as the binary itself; SIGTERM stops them all", async () => {
  const cwd = tempDir("start");
  const [redisPort, port] = [await freePort(), await freePort()];
  // MIMALLOC_VERBOSE: each process's allocator says what it read at start-up (see the children's below).
  const start = spawnBin(["start"], cwd, { REDIS_URL: `redis://127.0.0.1:${redisPort}`, PORT: String(port), TASKWIRE_PREFIX: uniquePrefix("binstart"), MIMALLOC_VERBOSE: "1" });
  try {
    await healthy(port, start.output, () => start.proc.exitCode !== null);
    await waitFor(() => start.output().includes("taking tasks"), 15_000, `worker under start\n${start.output()}`);
    expect(start.output()).toContain("started a private redis-server");
    expect(existsSync(join(cwd, ".taskwire", "redis"))).toBe(true);
    for (const role of ["server", "worker"]) {
      const pid = new RegExp(`${role} started, pid (\\d+)`).exec(start.output())?.[1];
      expect(cmdlineOf(Number(pid))).toEqual([bin, role === "server" ? "serve" : "worker"]);
      expect(environOf(Number(pid))).toMatchObject(RUNTIME_ENV);
    }
    // Three start-ups: `start` with Bun's defaults, then each child with the settings `start` gave it (no restart).
    expect(mimallocSaw(start.output(), "purge_holes").sort()).toEqual(["0", "0", "1"]);
    await seedFlow(port);
    await wsCountdown(port);
    start.proc.kill("SIGTERM");
    expect(await start.proc.exited).toBe(0);
    expect(await ping(redisPort)).toBe(false);
  } finally {
    start.proc.kill("SIGKILL");
    await start.proc.exited;
  }
}, 60_000);
