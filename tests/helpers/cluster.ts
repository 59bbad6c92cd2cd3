/** Starts a private 3-master Redis Cluster for one test file: free ports, temp dir, `redis-cli --cluster create`, stopped (and removed) by stop(). */
import { mkdtempSync, rmSync } from "node:fs";
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
  stop(): Promise<void>;
}

export async function startCluster(masters = 3): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), "taskwire-cluster-"));
  const ports: number[] = [];
  const procs: Subprocess[] = [];
  const stop = async () => {
    for (const p of procs) p.kill(9);
    await Promise.all(procs.map((p) => p.exited));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters; i++) {
      const port = await freePort();
      ports.push(port);
      procs.push(Bun.spawn([
        "redis-server", "--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no",
        "--cluster-enabled", "yes", "--cluster-config-file", join(dir, `nodes-${port}.conf`), "--cluster-node-timeout", "5000",
        "--logfile", join(dir, `redis-${port}.log`),
      ], { stdout: "ignore", stderr: "inherit" }));
    }
    for (const port of ports) await waitFor(() => ping(port), 10_000, `cluster node on ${port}`);
    const nodes = ports.map((p) => `127.0.0.1:${p}`).join(",");
    const create = Bun.spawnSync(["redis-cli", "--cluster", "create", ...nodes.split(","), "--cluster-replicas", "0", "--cluster-yes"]);
    if (create.exitCode !== 0) throw new Error(`redis-cli --cluster create failed:\n${create.stdout}\n${create.stderr}`);
    await waitFor(() => ports.every((port) => cli({ port }, "cluster", "info").includes("cluster_state:ok")), 20_000, "cluster_state:ok on every node");
    return { ports, url: `redis+cluster://${nodes}`, nodes, dir, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
