/**
 * `npm start` (scripts/start.ts): a private redis-server when none answers (its children on its Unix socket),
 * a unix:// REDIS_URL, Ctrl-C stops every child, and the install hint when there is no redis-server.
 */
import { expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { redactUrl } from "../server.ts";
import { ConfigError, loadConfig, parseUnixUrl } from "../lib/config.ts";
import { ROOT } from "./helpers/procs.ts";
import { ping } from "./helpers/redis.ts";
import { freePort, waitFor } from "./helpers/util.ts";
import { openSocket } from "./helpers/ws.ts";

async function collect(s: ReadableStream<Uint8Array>, into: { text: string }): Promise<void> {
  const dec = new TextDecoder();
  for await (const chunk of s) into.text += dec.decode(chunk);
}

/** `npm start` (scripts/start.ts) with `env`; resolves once /healthz answers and the worker takes tasks. */
async function npmStart(port: number, env: Record<string, string>): Promise<{ proc: Bun.Subprocess; log: { text: string } }> {
  const log = { text: "" };
  const proc = Bun.spawn([process.execPath, "run", join(ROOT, "scripts", "start.ts")], {
    cwd: ROOT, env: { ...process.env, PORT: String(port), ...env }, stdout: "pipe", stderr: "pipe",
  });
  void collect(proc.stdout as ReadableStream<Uint8Array>, log);
  void collect(proc.stderr as ReadableStream<Uint8Array>, log);
  try {
    await waitFor(() => fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status === 200, () => false), 20_000, `taskwire on ${port}\n${log.text}`);
    await waitFor(() => log.text.includes("taking tasks"), 10_000, `worker\n${log.text}`);
  } catch (err) {
    proc.kill("SIGKILL");
    throw err;
  }
  return { proc, log };
}

test("npm start with nothing at REDIS_URL starts a private redis-server, serves the seed flow, and Ctrl-C stops it all", async () => {
  const [redisPort, port] = [await freePort(), await freePort()];
  const dataRoot = mkdtempSync(join(tmpdir(), "taskwire-start-"));
  // TASKWIRE_DATA_DIR keeps this run's Redis data out of the project's .taskwire/.
  let proc: Bun.Subprocess | undefined;
  try {
    const started = await npmStart(port, { REDIS_URL: `redis://127.0.0.1:${redisPort}/2`, TASKWIRE_PREFIX: "tw-test-start", TASKWIRE_DATA_DIR: dataRoot });
    proc = started.proc;
    const log = started.log;
    expect(log.text).toContain(`started a private redis-server`);
    expect(await ping(redisPort)).toBe(true);
    expect(readdirSync(join(dataRoot, "redis"))).toContain("appendonlydir");
    // Server and worker reach their private Redis through its socket, not the TCP port, in REDIS_URL's database.
    const socket = join(dataRoot, "redis", "redis.sock");
    expect(log.text).toContain(`and unix://${socket}`);
    const clients = Bun.spawnSync(["redis-cli", "-p", String(redisPort), "client", "list"]).stdout.toString().split("\n");
    for (const role of ["server:command", "server:subscriber", "worker:command", "worker:blocking"]) {
      expect(clients.find((c) => c.includes(` name=taskwire-${role} `)) ?? `no ${role} client`).toMatch(new RegExp(` addr=${socket}:0 .* db=2 `));
    }

    const s = await openSocket(`ws://127.0.0.1:${port}/async_task/`);
    s.send('{"task_id":1}');
    expect(JSON.parse(await s.nextRaw())).toMatchObject({ msg: "task 1 is running...", flag: true });
    expect(await s.nextRaw()).toBe('{"msg": "success", "flag": true, "data": {"result": 1}}');
    expect((await s.closed).code).toBe(1000);

    proc.kill("SIGINT");
    expect(await Promise.race([proc.exited, Bun.sleep(15_000).then(() => "hung")])).toBe(0);
    expect(await ping(redisPort)).toBe(false);
    expect(log.text).toContain("stopped");
  } finally {
    if (proc?.exitCode === null) proc.kill("SIGKILL");
    Bun.spawnSync(["redis-cli", "-p", String(redisPort), "shutdown", "nosave"]);
    rmSync(dataRoot, { recursive: true, force: true });
  }
}, 40_000);

test("npm start stopped through npm (SIGTERM to npm, as a container runtime sends it) stops server, worker and redis-server", async () => {
  const [redisPort, port] = [await freePort(), await freePort()];
  const dataRoot = mkdtempSync(join(tmpdir(), "taskwire-start-"));
  const log = { text: "" };
  // npm runs the script under `sh -c`, which passes no signal on: package.json's `exec` makes the launcher npm's child.
  const npm = Bun.spawn(["npm", "start"], {
    cwd: ROOT, stdout: "pipe", stderr: "pipe",
    env: { ...process.env, PORT: String(port), REDIS_URL: `redis://127.0.0.1:${redisPort}`, TASKWIRE_PREFIX: "tw-test-npm", TASKWIRE_DATA_DIR: dataRoot },
  });
  void collect(npm.stdout as ReadableStream<Uint8Array>, log);
  void collect(npm.stderr as ReadableStream<Uint8Array>, log);
  const serving = () => fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status === 200, () => false);
  try {
    await waitFor(serving, 30_000, `taskwire on ${port}\n${log.text}`);
    await waitFor(() => log.text.includes("taking tasks"), 10_000, `worker\n${log.text}`);
    npm.kill("SIGTERM");
    await Promise.race([npm.exited, Bun.sleep(15_000)]);
    await waitFor(async () => !(await serving()) && !(await ping(redisPort)), 15_000, `everything to stop\n${log.text}`);
    expect(log.text).toContain("SIGTERM: stopping server, worker and redis-server");
    expect(log.text).toContain("[start] stopped");
  } finally {
    if (npm.exitCode === null) npm.kill("SIGKILL");
    Bun.spawnSync(["redis-cli", "-p", String(redisPort), "shutdown", "nosave"]);
    rmSync(dataRoot, { recursive: true, force: true });
  }
}, 60_000);

test("with no Redis answering and no redis-server installed, npm start says how to install one", async () => {
  // A PATH that has bun but no redis-server.
  const binDir = mkdtempSync(join(tmpdir(), "taskwire-nobin-"));
  symlinkSync(process.execPath, join(binDir, "bun"));
  expect(existsSync(join(binDir, "redis-server"))).toBe(false);
  try {
    const proc = Bun.spawn([process.execPath, "run", join(ROOT, "scripts", "start.ts")], {
      cwd: ROOT,
      env: { ...process.env, PATH: binDir, REDIS_URL: `redis://127.0.0.1:${await freePort()}`, PORT: String(await freePort()) },
      stdout: "pipe",
      stderr: "pipe",
    });
    const code = await Promise.race([proc.exited, Bun.sleep(15_000).then(() => "hung")]);
    const err = await new Response(proc.stderr as ReadableStream<Uint8Array>).text();
    expect(code).not.toBe(0);
    expect(code).not.toBe("hung");
    expect(err).toContain("redis-server is not installed");
    expect(err).toContain("apt-get install -y redis-server");
  } finally {
    rmSync(binDir, { recursive: true, force: true });
  }
}, 30_000);

test("npm start with REDIS_URL=unix://... and nothing on that socket starts a private redis-server there (no TCP port)", async () => {
  const port = await freePort();
  const dataRoot = mkdtempSync(join(tmpdir(), "taskwire-sock-"));
  const socket = join(dataRoot, "r.sock");
  let proc: Bun.Subprocess | undefined;
  try {
    const started = await npmStart(port, { REDIS_URL: `unix://${socket}?db=3`, TASKWIRE_PREFIX: "tw-test-sock", TASKWIRE_DATA_DIR: dataRoot });
    proc = started.proc;
    const log = started.log;
    expect(log.text).toContain(`started a private redis-server`);
    expect(log.text).toContain(`on unix://${socket},`);
    expect(Bun.spawnSync(["redis-cli", "-s", socket, "config", "get", "port"]).stdout.toString().split("\n")[1]).toBe("0");
    const s = await openSocket(`ws://127.0.0.1:${port}/ws`);
    s.send(JSON.stringify({ type: "submit", ref: "r1", task: "test_task", args: { task_id: 2 } }));
    const accepted = JSON.parse(await s.nextRaw());
    expect(accepted).toMatchObject({ type: "accepted", ref: "r1" });
    expect(JSON.parse(await s.nextRaw())).toMatchObject({ type: "result", id: accepted.id, seq: 1 });
    s.close();
    // ?db=3 was honoured: the task is in database 3 of the socket's Redis.
    const keys = Bun.spawnSync(["redis-cli", "-s", socket, "-n", "3", "--scan", "--pattern", "tw-test-sock:*"]).stdout.toString();
    expect(keys).toContain(accepted.id);
    proc.kill("SIGINT");
    expect(await Promise.race([proc.exited, Bun.sleep(15_000).then(() => "hung")])).toBe(0);
  } finally {
    if (proc?.exitCode === null) proc.kill("SIGKILL");
    Bun.spawnSync(["redis-cli", "-s", socket, "shutdown", "nosave"]);
    rmSync(dataRoot, { recursive: true, force: true });
  }
}, 40_000);

test("config: REDIS_URL=unix:///path[?db=N&password=...] names a local socket; malformed ones are refused with the fix", () => {
  expect(parseUnixUrl("unix:///run/redis/redis.sock")).toEqual({ path: "/run/redis/redis.sock" });
  expect(parseUnixUrl("unix:///tmp/r%20s.sock?db=2&password=s3cret")).toEqual({ path: "/tmp/r s.sock", db: 2, password: "s3cret" });
  expect(loadConfig({ REDIS_URL: "unix:///tmp/r.sock" }).REDIS_URL).toBe("unix:///tmp/r.sock");
  const refused = (url: string) => {
    try {
      loadConfig({ REDIS_URL: url });
      return "accepted";
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    }
  };
  const fix = "a socket URL is unix:// then an absolute path of at most 107 bytes";
  expect(refused("unix://relative/r.sock")).toContain(fix);
  expect(refused("unix:///tmp/r.sock?dbx=1")).toContain(fix);
  expect(refused("unix:///tmp/r.sock?db=one")).toContain(fix);
  expect(refused(`unix:///${"d/".repeat(60)}r.sock`)).toContain(fix);
  expect(refused("unix:/tmp/r.sock")).toContain("unix:///path/to/redis.sock");
  // Logs never show the password, in either place a URL can carry it.
  expect(redactUrl("unix:///tmp/r.sock?db=1&password=s3cret")).toBe("unix:///tmp/r.sock?db=1&password=***");
  expect(redactUrl("redis://user:s3cret@h:6379")).toBe("redis://***@h:6379");
});
