/** Runs taskwire's real processes for tests: `bun run server.ts` / `bun run worker.ts` with env, logs kept for failures. */
import { join } from "node:path";
import type { Subprocess } from "bun";
import { freePort, waitFor } from "./util.ts";

export const ROOT = join(import.meta.dir, "..", "..");

export interface Proc {
  proc: Subprocess;
  pid: number;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  kill(signal?: number | NodeJS.Signals): Promise<number>;
}

function spawnLogged(cmd: string[], env: Record<string, string>, cwd: string): Proc {
  let out = "";
  const proc = Bun.spawn(cmd, { cwd, env: { ...process.env, LOG_LEVEL: "info", ...env }, stdout: "pipe", stderr: "pipe" });
  const pump = async (s: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    for await (const chunk of s) out += dec.decode(chunk);
  };
  void pump(proc.stdout as ReadableStream<Uint8Array>);
  void pump(proc.stderr as ReadableStream<Uint8Array>);
  return {
    proc, pid: proc.pid,
    output: () => out,
    async kill(signal = "SIGTERM") {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return proc.exited;
    },
  };
}

export interface ServerProc extends Proc {
  port: number;
  http: string;
  ws: string;
}

/**
 * `script`: another server speaking the protocol (a bench baseline in bench/baseline/); it must answer GET /healthz.
 * `cwd`: another checkout of taskwire to run it from (bench/ab.ts).
 */
export async function startServer(env: Record<string, string>, script = "server.ts", cwd = ROOT): Promise<ServerProc> {
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const p = spawnLogged([process.execPath, "run", script], { ...env, PORT: String(port) }, cwd);
  const tls = Boolean(env.TLS_CERT_FILE);
  const http = `${tls ? "https" : "http"}://127.0.0.1:${port}`;
  await waitFor(async () => {
    if (p.proc.exitCode !== null) throw new Error(`server exited ${p.proc.exitCode}:\n${p.output()}`);
    // Only a readiness probe: the TLS tests verify the certificate on their own requests.
    return fetch(`${http}/healthz`, { tls: { rejectUnauthorized: false } }).then((r) => r.status === 200, () => false);
  }, 15_000, `server on ${port}\n${p.output()}`);
  return { ...p, port, http, ws: `${tls ? "wss" : "ws"}://127.0.0.1:${port}` };
}

/** `script`: another worker (a bench baseline in bench/baseline/); it must print "taking tasks" once ready. */
export async function startWorker(env: Record<string, string>, script = "worker.ts", cwd = ROOT): Promise<Proc> {
  const p = spawnLogged([process.execPath, "run", script], env, cwd);
  await waitFor(() => {
    if (p.proc.exitCode !== null) throw new Error(`worker exited ${p.proc.exitCode}:\n${p.output()}`);
    return p.output().includes("taking tasks");
  }, 15_000, `worker start\n${p.output()}`);
  return p;
}
