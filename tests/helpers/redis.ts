/** Starts a private redis-server for one test file: free port, temp dir, stopped (and the dir removed) by stop(). */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { makeLogger } from "../../lib/log.ts";
import { createRedis, waitReady } from "../../lib/redis.ts";
import type { ScriptedRedis } from "../../lib/scripts.ts";
import { freePort, waitFor } from "./util.ts";

export interface TestRedis {
  port: number;
  url: string;
  /** The same Redis through its Unix socket (unix://<dir>/redis.sock). */
  socketUrl: string;
  dir: string;
  proc: Subprocess;
  /** kill -9 (data survives only through the AOF, if on). */
  kill(): Promise<void>;
  /** Starts it again on the same port and dir (after kill). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRedis(opts: { aof?: boolean; extraArgs?: string[] } = {}): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), "taskwire-redis-"));
  const port = await freePort();
  const args = [
    "redis-server", "--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "",
    "--appendonly", opts.aof ? "yes" : "no", ...(opts.aof ? ["--appendfsync", "always"] : []),
    "--logfile", join(dir, "redis.log"), "--unixsocket", join(dir, "redis.sock"), "--unixsocketperm", "700",
    ...(opts.extraArgs ?? []),
  ];
  const r: TestRedis = {
    port, url: `redis://127.0.0.1:${port}`, socketUrl: `unix://${join(dir, "redis.sock")}`, dir, proc: undefined as unknown as Subprocess,
    async kill() {
      r.proc.kill(9);
      await r.proc.exited;
    },
    async restart() {
      r.proc = Bun.spawn(args, { stdout: "ignore", stderr: "inherit" });
      await waitFor(() => ping(port), 10_000, `redis-server on ${port}`);
    },
    async stop() {
      r.proc.kill(9);
      await r.proc.exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await r.restart();
  return r;
}

/** True when something answers PING on the port. */
export async function ping(port: number): Promise<boolean> {
  try {
    const sock = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
    sock.end();
    const p = Bun.spawnSync(["redis-cli", "-p", String(port), "ping"]);
    return p.stdout.toString().trim() === "PONG";
  } catch {
    return false;
  }
}

/** Runs a redis-cli command against the test Redis and returns its trimmed output. */
export function cli(r: { port: number }, ...args: string[]): string {
  return Bun.spawnSync(["redis-cli", "-p", String(r.port), ...args]).stdout.toString().trim();
}

/** A private redis-server and a ready taskwire command client on it (scripts loaded), for tests of lib/ pieces. */
export async function startRedisWithClient(name: string): Promise<{ redis: TestRedis; client: ScriptedRedis; stop(): Promise<void> }> {
  const redis = await startRedis();
  const client = createRedis(redis.url, "command", makeLogger(name, "silent"), name);
  await waitReady(client, 5_000);
  return { redis, client, stop: async () => (client.disconnect(), await redis.stop()) };
}
