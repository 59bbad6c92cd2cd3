/**
 * Starts a private Redis Cluster for one test file (3 masters; with `replicas`, that many replicas of each):
 * free ports, temp dir, `redis-cli --cluster create`, stopped (and removed) by stop().
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { cli, ping } from "./redis.ts";
import { freePort, waitFor } from "./util.ts";

export interface TestCluster {
  ports: number[];
  /** REDIS_URL for taskwire: redis+cluster://127.0.0.1:p1,... */
  url: string;
  /** REDIS_CLUSTER_NODES form: 127.0.0.1:p1,... */
  nodes: string;
  dir: string;
  /** kill -9 one node (its replica, if any, takes over after the node timeout). */
  kill(port: number): Promise<void>;
  /** The last `lines` lines of one node's log: what a failing test shows of why the cluster did what it did. */
  logTail(port: number, lines?: number): string;
  stop(): Promise<void>;
}

export async function startCluster(masters = 3, opts: { replicas?: number; nodeTimeoutMs?: number } = {}): Promise<TestCluster> {
  const replicas = opts.replicas ?? 0;
  const dir = mkdtempSync(join(tmpdir(), "taskwire-cluster-"));
  const ports: number[] = [];
  const procs: Subprocess[] = [];
  const stop = async () => {
    for (const p of procs) p.kill(9);
    await Promise.all(procs.map((p) => p.exited));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters * (1 + replicas); i++) {
      const port = await freePort();
      ports.push(port);
      procs.push(Bun.spawn([
        "redis-server", "--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no",
        "--cluster-enabled", "yes", "--cluster-config-file", join(dir, `nodes-${port}.conf`), "--cluster-node-timeout", String(opts.nodeTimeoutMs ?? 5000),
        "--logfile", join(dir, `redis-${port}.log`),
      ], { stdout: "ignore", stderr: "inherit" }));
    }
    for (const port of ports) await waitFor(() => ping(port), 10_000, `cluster node on ${port}`);
    const nodes = ports.map((p) => `127.0.0.1:${p}`).join(",");
    const create = Bun.spawnSync(["redis-cli", "--cluster", "create", ...nodes.split(","), "--cluster-replicas", String(replicas), "--cluster-yes"]);
    if (create.exitCode !== 0) throw new Error(`redis-cli --cluster create failed:\n${create.stdout}\n${create.stderr}`);
    await waitFor(() => ports.every((port) => cli({ port }, "cluster", "info").includes("cluster_state:ok")), 20_000, "cluster_state:ok on every node");
    const synced = (port: number) => {
      const info = cli({ port }, "info", "replication");
      return info.includes("role:master") || info.includes("master_link_status:up");
    };
    await waitFor(() => ports.every(synced), 20_000, "every replica in sync with its master");
    const kill = async (port: number) => {
      const p = procs[ports.indexOf(port)];
      p?.kill(9);
      await p?.exited;
    };
    const logTail = (port: number, lines = 40) => {
      try {
        return readFileSync(join(dir, `redis-${port}.log`), "utf8").trimEnd().split("\n").slice(-lines).join("\n");
      } catch (err) {
        return `(no log for ${port}: ${(err as Error).message})`;
      }
    };
    return { ports, url: `redis+cluster://${nodes}`, nodes, dir, kill, logTail, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
