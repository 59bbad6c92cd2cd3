/**
 * Start-up benchmark for the one binary (issue 8), run on demand: binary size, and the time from spawning
 * `dist/taskwire serve` to the first /ws WebSocket that opens, against a private redis-server. Prints
 * min / median / max over N runs, with `bun run cli.ts serve` from the source tree for comparison.
 *
 *   npm run build && bun run bench/startup.ts [--runs 10] [--binary dist/taskwire]
 */
import { existsSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { startRedis } from "../tests/helpers/redis.ts";
import { freePort } from "../tests/helpers/util.ts";

const ROOT = join(import.meta.dir, "..");
const arg = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
};
const runs = Number(arg("runs") ?? 10);
if (!Number.isInteger(runs) || runs < 1 || runs > 100) {
  console.error("--runs: use a whole number from 1 to 100");
  process.exit(2);
}
const binary = resolve(arg("binary") ?? join(ROOT, "dist", "taskwire"));
if (!existsSync(binary)) {
  console.error(`${binary} does not exist: run \`npm run build\` first (or pass --binary <path>)`);
  process.exit(2);
}

/** Resolves true once a WebSocket to url opens, false on error/close or after ms. */
function tryOpen(url: string, ms: number): Promise<boolean> {
  return new Promise((done) => {
    const ws = new WebSocket(url);
    const t = setTimeout(() => finish(false), ms);
    const finish = (ok: boolean) => {
      clearTimeout(t);
      ws.close();
      done(ok);
    };
    ws.onopen = () => finish(true);
    ws.onerror = () => finish(false);
  });
}

/** ms from spawn to the first /ws socket that opens. */
async function startOnce(cmd: string[], env: Record<string, string>, cwd: string): Promise<number> {
  const port = await freePort();
  const t0 = performance.now();
  const proc = Bun.spawn(cmd, { cwd, env: { ...process.env, ...env, PORT: String(port), LOG_LEVEL: "warn" }, stdout: "ignore", stderr: "inherit" });
  try {
    const deadline = t0 + 15_000;
    while (performance.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`${cmd.join(" ")} exited with ${proc.exitCode}`);
      if (await tryOpen(`ws://127.0.0.1:${port}/ws`, 1_000)) return performance.now() - t0;
      await Bun.sleep(1);
    }
    throw new Error(`no /ws socket within 15 s from ${cmd.join(" ")}`);
  } finally {
    proc.kill("SIGKILL");
    await proc.exited;
  }
}

/** ms for a command that exits on its own (e.g. --version): the process start-up floor. */
async function runOnce(cmd: string[], cwd: string): Promise<number> {
  const t0 = performance.now();
  const p = Bun.spawn(cmd, { cwd, stdout: "ignore", stderr: "inherit" });
  if ((await p.exited) !== 0) throw new Error(`${cmd.join(" ")} failed`);
  return performance.now() - t0;
}

function stats(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const med = s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  return `min ${s[0]!.toFixed(1)} ms  median ${med.toFixed(1)} ms  max ${s[s.length - 1]!.toFixed(1)} ms  (n=${s.length})`;
}

const redis = await startRedis();
const env = { REDIS_URL: redis.url, TASKWIRE_PREFIX: `tw-bench-startup-${Math.random().toString(36).slice(2, 8)}` };
try {
  const bin: number[] = [];
  const src: number[] = [];
  const ver: number[] = [];
  await startOnce([binary, "serve"], env, redis.dir); // warm the page cache once; not counted
  for (let i = 0; i < runs; i++) {
    // The binary runs from an empty directory (redis's temp dir): nothing from the source tree.
    bin.push(await startOnce([binary, "serve"], env, redis.dir));
    src.push(await startOnce([process.execPath, "run", "cli.ts", "serve"], env, ROOT));
    ver.push(await runOnce([binary, "--version"], redis.dir));
  }
  const size = statSync(binary).size;
  console.log(`binary            ${binary}: ${(size / 1024 / 1024).toFixed(1)} MiB (${size} bytes)`);
  console.log(`binary serve      spawn -> first /ws socket open: ${stats(bin)}   target < 150 ms`);
  console.log(`source serve      bun run cli.ts serve -> first /ws socket open: ${stats(src)}`);
  console.log(`binary --version  spawn -> exit: ${stats(ver)}`);
  const med = [...bin].sort((a, b) => a - b)[Math.floor(bin.length / 2)]!;
  console.log(med < 150 ? "startup target met" : "startup target MISSED");
} finally {
  await redis.stop();
}
