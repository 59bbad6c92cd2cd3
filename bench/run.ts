/**
 * `bun run bench`: for each workload starts a private redis-server, the server and one worker, warms them
 * up, runs bench/load.ts 3 times against them, and writes bench/results/<date>.{json,md,svg}. Flags: usage()
 * below, or `bun run bench --help`.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type Proc, ROOT, type ServerProc, startServer, startWorker } from "../tests/helpers/procs.ts";
import { cli, startRedis, type TestRedis } from "../tests/helpers/redis.ts";
import { RUNTIME_ENV } from "../lib/runtime-env.ts";
import { machineJiffies, type Pids } from "./procstat.ts";
import type { LoadResult } from "./load.ts";
import { perfStat, perfUnavailable } from "./perf.ts";
import { floorRatios, floorTable, markdownTable, perfCell, perfTable, summarize, svgChart, type WorkloadReport } from "./report.ts";

export interface Workload {
  title: string;
  target: string;
  /** Arguments for bench/load.ts (mode first). */
  args: (o: RunOptions) => string[];
  /** What runs, discarded, between the JIT warm-up burst and the first run (default: args). */
  settle?: (o: RunOptions) => string[];
  /**
   * Why --floor has nothing to compare here: the relay floors' bare RESP reader is built for small values
   * (payload workloads cost it more than taskwire), and they keep no idle sockets of their own.
   */
  noFloor?: string;
}

export interface RunOptions {
  seconds: number;
  warmup: number;
  /** Seconds of the workload itself, discarded, after the JIT warm-up burst (--settle). */
  settle: number;
  runs: number;
  socketsIdle: number;
  autopipeline: boolean;
  profile: boolean;
  /** --perf: `perf stat` of server, worker and Redis during each measured run (bench/perf.ts). */
  perf: boolean;
  /** Server and worker reach Redis over loopback TCP instead of its Unix socket (the private Redis default). */
  tcp: boolean;
  /** Extra environment for the server and worker (--env NAME=value), e.g. WORKER_CONCURRENCY. */
  env: Record<string, string>;
  /** What serves the workloads (--stack): taskwire, the BullMQ + Bun.serve baseline, or the echo floor. */
  stack: StackName;
  /** --floor: a stack measured right after each run, on the same workload, so the host's drift hits both alike. */
  floor?: StackName;
}

interface StackDef {
  server: string;
  worker: string | undefined;
  title: string;
  /** Settings the stack's server and worker start with (before --env). */
  env?: Record<string, string>;
  /** Keeps each task as a hash and an event log, both with a TTL: what Redis holds per task can be read (redisHeld). */
  keepsTasks?: true;
}

/** The server and worker scripts of each stack the bench can measure (paths from the project root). */
const STACKS = {
  taskwire: { server: "server.ts", worker: "worker.ts", title: "taskwire", keepsTasks: true },
  bullmq: { server: "bench/baseline/bullmq-server.ts", worker: "bench/baseline/bullmq-worker.ts", title: "BullMQ + Bun.serve baseline" },
  echo: { server: "bench/baseline/echo-server.ts", worker: undefined, title: "echo floor (load generator and loopback only)" },
  relay: { server: "bench/baseline/relay-server.ts", worker: "bench/baseline/relay-worker.ts", title: "relay floor (server, Redis list, worker, pub/sub: the hops alone)" },
  "relay-stored": {
    server: "bench/baseline/relay-server.ts", worker: "bench/baseline/relay-worker.ts", env: { RELAY_STORED: "1" }, keepsTasks: true,
    title: "stored relay floor (the relay floor plus the least storing and acknowledging that losing nothing needs)",
  },
  "relay-claimed": {
    server: "bench/baseline/relay-server.ts", worker: "bench/baseline/relay-worker.ts", env: { RELAY_STORED: "1", RELAY_CLAIMED: "1" }, keepsTasks: true,
    title: "claimed relay floor (the stored floor, plus a claim round trip before each task runs, as taskwire's start)",
  },
} satisfies Record<string, StackDef>;
type StackName = keyof typeof STACKS;

export const WORKLOADS: Record<string, Workload> = {
  "ws-closed": {
    title: "/ws closed loop, 50 sockets × 20 in flight",
    target: "≥ 22,000 tasks/s",
    args: () => ["ws-closed", "--sockets", "50", "--inflight", "20"],
  },
  "ws-open": {
    title: "/ws open loop, 1,000 tasks/s on 10 sockets",
    target: "p50 ≤ 0.5 ms, p99 ≤ 2 ms, CPU ≤ 0.3 ms/task",
    args: () => ["ws-open", "--rate", "1000", "--sockets", "10"],
  },
  async: {
    title: "/async_task/, 50 sockets, one task per socket (connect to result)",
    target: "≥ 5,000 tasks/s",
    args: () => ["async", "--sockets", "50"],
  },
  "async-seq": {
    title: "/async_task/ sequential round trip (connect to result)",
    target: "p50 ≤ 1 ms",
    args: () => ["async-seq"],
  },
  "ws-1k": {
    noFloor: "the floors are not built for large values",
    title: "/ws closed loop, 1 KB args and result, 50 × 20",
    target: "no collapse vs ws-closed",
    args: () => ["ws-closed", "--sockets", "50", "--inflight", "20", "--payload", "1024"],
  },
  "ws-64k": {
    noFloor: "the floors are not built for large values",
    title: "/ws closed loop, 64 KB args and result, 50 × 4",
    target: "no collapse (bytes/s)",
    args: () => ["ws-closed", "--sockets", "50", "--inflight", "4", "--payload", "65536"],
  },
  connections: {
    noFloor: "idle sockets have no floor to compare",
    title: "idle /ws sockets + 200 tasks/s probe (latency of the probe)",
    target: "20k sockets: RSS ≤ +100 MB; probe p99 < 5 ms",
    // Several source addresses: past ~10k sockets per address the kernel's ephemeral-port search slows opening a lot.
    args: (o) => ["connections", "--sockets", String(o.socketsIdle), "--rate", "200", "--per-source", "5000"],
    settle: () => ["ws-open", "--rate", "200", "--sockets", "1"],
  },
};

const log = (s: string) => process.stderr.write(`${s}\n`);

export interface Stack {
  redis: TestRedis;
  server: ServerProc;
  /** None for the echo floor. */
  worker?: Proc;
  /** Each process's pid by role: server, worker (none for the echo floor), redis. */
  pids: Pids;
  keepsTasks: boolean;
}

/** Starts a stack on a private Redis; `cwd`: another checkout of taskwire to run it from (bench/ab.ts). */
export async function startStack(o: RunOptions, name: StackName, profileDir?: string, cwd = ROOT): Promise<Stack> {
  const redis = await startRedis();
  const def: StackDef = STACKS[name];
  // Every stack's Bun processes run with taskwire's allocator settings (taskwire's would restart for them), so
  // a floor or BullMQ differs from taskwire by design alone; --env can still override them.
  const env: Record<string, string> = { REDIS_URL: o.tcp ? redis.url : redis.socketUrl, TASKWIRE_PREFIX: "bench", RESULT_TTL_S: "600", ...RUNTIME_ENV, ...def.env, ...o.env };
  const bunOptions: string[] = [];
  // A bunfig of our own adds the preload without touching lib/ (a CLI --preload is overridden by bunfig.toml's).
  if (o.autopipeline) bunOptions.push(`--config=${join(ROOT, "bench", "bunfig.autopipeline.toml")}`);
  if (profileDir) bunOptions.push("--cpu-prof", "--cpu-prof-md", `--cpu-prof-dir=${profileDir}`);
  if (bunOptions.length) env.BUN_OPTIONS = bunOptions.join(" ");
  try {
    const server = await startServer(env, def.server, cwd);
    const worker = def.worker ? await startWorker(env, def.worker, cwd) : undefined;
    const pids = { server: server.pid, ...(worker ? { worker: worker.pid } : {}), redis: redis.proc.pid };
    return { redis, server, worker, pids, keepsTasks: def.keepsTasks === true };
  } catch (err) {
    await redis.stop();
    throw err;
  }
}

export async function stopStack(s: Stack, graceful: boolean): Promise<void> {
  // SIGTERM lets a --cpu-prof process write its profile on exit; otherwise no need to wait.
  const signal = graceful ? "SIGTERM" : "SIGKILL";
  const deadline = Bun.sleep(15_000).then(() => "timeout");
  const procs = [s.server, ...(s.worker ? [s.worker] : [])];
  const stopped = Promise.all(procs.map((p) => p.kill(signal)));
  if ((await Promise.race([stopped, deadline])) === "timeout") await Promise.all(procs.map((p) => p.kill("SIGKILL")));
  await s.redis.stop();
}

/** One bench/load.ts process; its progress lines pass through, its last stdout line is the result. */
export async function load(stack: Stack, args: string[], extra: string[] = []): Promise<LoadResult> {
  const pids = Object.entries(stack.pids).map(([role, pid]) => `${role}=${pid}`).join(",");
  const cmd = [process.execPath, "run", join(ROOT, "bench", "load.ts"), ...args, "--url", stack.server.http, "--pids", pids, ...extra];
  const p = Bun.spawn(cmd, { cwd: ROOT, stdout: "pipe", stderr: "inherit" });
  const out = await new Response(p.stdout).text();
  await p.exited;
  const line = out.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line) as LoadResult;
  } catch {
    throw new Error(`load generator exited ${p.exitCode} without a result: ${out.slice(-500)}`);
  }
}

/** The commands Redis spent most time in (INFO commandstats, script-internal calls included), as usec per verified task. */
function topCommands(info: string, tasks: number): string {
  const rows = [...info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)].map((m) => ({ cmd: m[1]!, calls: Number(m[2]), usec: Number(m[3]) }));
  rows.sort((a, b) => b.usec - a.usec);
  const per = (x: number) => (tasks > 0 ? (x / tasks).toFixed(tasks > 0 && x / tasks < 10 ? 2 : 0) : "?");
  const total = rows.reduce((a, r) => a + r.usec, 0);
  return `total ${per(total)}: ` + rows.slice(0, 8).map((r) => `${r.cmd} ${per(r.usec)} (${per(r.calls)} calls)`).join(", ");
}

/**
 * What Redis holds (used_memory, bytes) and how many of its keys carry a TTL. Every task's hash and event
 * log do, and nothing else a bench task makes (it has no idempotency key), so half of them is the tasks.
 */
function redisHeld(stack: Stack): { bytes: number; tasks: number } {
  const bytes = Number(/^used_memory:(\d+)/m.exec(cli(stack.redis, "INFO", "memory"))?.[1]);
  return { bytes, tasks: Number(/expires=(\d+)/.exec(cli(stack.redis, "INFO", "keyspace"))?.[1] ?? 0) / 2 };
}

/** Share of all cores busy over `ms` before the bench starts (everything on the box): above IDLE_MAX_PCT the figures are provisional. */
async function busyBefore(ms: number): Promise<number> {
  const a = machineJiffies();
  await Bun.sleep(ms);
  const b = machineJiffies();
  return Math.round((100 * (b.busy - a.busy)) / Math.max(1, b.total - a.total));
}
const IDLE_MAX_PCT = 10;

export function machine() {
  const redisVersion = Bun.spawnSync(["redis-server", "--version"]).stdout.toString().trim();
  return {
    cpu: cpus()[0]?.model ?? "?",
    cores: cpus().length,
    memGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    bun: Bun.version,
    redis: redisVersion.match(/v=(\S+)/)?.[1] ?? redisVersion,
    loadavgAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
    code: codeVersion(),
    idlePolling: idlePolling(),
    /** What every stack's Bun processes start with (startStack), unless --env says otherwise. */
    allocator: Object.entries(RUNTIME_ENV).map(([k, v]) => `${k}=${v}`).join(" "),
  };
}

/**
 * How long an idle vCPU polls before it halts (KVM guests' cpuidle-haltpoll), if this kernel has it. It moves
 * the open loop's figures: waking a halted vCPU is what a task's hops cost on a VM (bench/NOTES.md).
 */
function idlePolling(): string {
  try {
    const ns = readFileSync("/sys/module/haltpoll/parameters/guest_halt_poll_ns", "utf8").trim();
    return `guest_halt_poll_ns ${ns}`;
  } catch {
    return "no haltpoll driver";
  }
}

/** Which code was measured: the commit and how many files differ from it (read-only git). */
function codeVersion(): string {
  const git = (...a: string[]) => Bun.spawnSync(["git", ...a], { cwd: ROOT, stderr: "ignore" });
  const head = git("rev-parse", "--short", "HEAD");
  if (head.exitCode !== 0) return "not a git checkout";
  const dirty = git("status", "--porcelain").stdout.toString().trim().split("\n").filter(Boolean).length;
  return `${head.stdout.toString().trim()}${dirty ? ` + ${dirty} changed files` : ""}`;
}

function usage(): string {
  const workloads = Object.entries(WORKLOADS).map(([name, w]) => `  ${name.padEnd(12)} ${w.title}`).join("\n");
  const stacks = Object.entries(STACKS).map(([name, s]) => `  ${name.padEnd(12)} ${s.title}`).join("\n");
  return `Usage: bun run bench [--only ws-closed,ws-open] [--seconds 5] [--warmup 1] [--settle 10] [--runs 3] [--quick]
                     [--sockets-idle 20000] [--autopipeline] [--profile] [--perf] [--tcp] [--env NAME=value ...]
                     [--label text] [--out dir] [--no-write] [--stack taskwire] [--floor relay-stored]

Workloads (--only; all by default):
${workloads}

Stacks (--stack; what serves the workloads):
${stacks}

  --seconds, --runs   each run's length and how many runs (medians are reported)
  --warmup, --settle  the JIT warm-up burst, then seconds of the workload itself, both discarded
  --quick             2 s runs, 1 run, shorter warm-up: a smoke test, not a figure to quote
  --sockets-idle      idle sockets for the connections workload
  --autopipeline      ioredis auto-pipelining on in server and worker (to measure it)
  --profile           bun --cpu-prof of server and worker, written beside the results
  --perf              perf stat of server, worker and Redis in each measured run: CPU per task to the
                      microsecond (task-clock), context switches and system calls per task (needs linux-perf)
  --tcp               server and worker reach Redis over loopback TCP, not its Unix socket
  --env NAME=value    extra environment for server and worker (e.g. WORKER_CONCURRENCY=128)
  --floor STACK       after each run, the same run on a floor stack (relay-stored: the guarantees' hops and
                      nothing else), and CPU per task as a multiple of it: the host's drift between minutes
                      hits both alike (ws-closed, ws-open, async and async-seq only)
  --label, --out      a note in the results' caption; where they go (default bench/results/)
  --no-write          print the table only`;
}

/** The workloads a floor stack can stand for (--floor, bench/ab.ts). */
export const PAIRABLE = Object.keys(WORKLOADS).filter((n) => !WORKLOADS[n]!.noFloor);

/** A numeric flag's value within [min, max] (dflt when absent); anything else names the flag and the range. */
export function parseNumber(flag: string, s: string | undefined, dflt: number, min: number, max: number): number {
  if (s === undefined) return dflt;
  const n = Number(s);
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${flag}: expected a number from ${min} to ${max}; got ${JSON.stringify(s)}`);
  return n;
}

/** NAME=value flags (--env and the like) as an environment. */
export function parseEnv(flag: string, kvs: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const kv of kvs) {
    const m = kv.match(/^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/);
    if (!m) throw new Error(`--${flag}: expected NAME=value (e.g. WORKER_CONCURRENCY=64); got ${JSON.stringify(kv)}`);
    env[m[1]!] = m[2]!;
  }
  return env;
}

function parse(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      only: { type: "string" },
      seconds: { type: "string" },
      warmup: { type: "string" },
      settle: { type: "string" },
      runs: { type: "string" },
      quick: { type: "boolean", default: false },
      "sockets-idle": { type: "string" },
      autopipeline: { type: "boolean", default: false },
      profile: { type: "boolean", default: false },
      perf: { type: "boolean", default: false },
      tcp: { type: "boolean", default: false },
      label: { type: "string", default: "" },
      "no-write": { type: "boolean", default: false },
      env: { type: "string", multiple: true, default: [] },
      out: { type: "string" },
      stack: { type: "string", default: "taskwire" },
      floor: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return undefined;
  const names = values.only ? values.only.split(",").map((s) => s.trim()).filter(Boolean) : Object.keys(WORKLOADS);
  for (const n of names) {
    if (!WORKLOADS[n]) throw new Error(`--only: unknown workload ${JSON.stringify(n)}; choose from ${Object.keys(WORKLOADS).join(", ")}`);
  }
  const stack = values.stack!;
  if (!(stack in STACKS)) throw new Error(`--stack: expected one of ${Object.keys(STACKS).join(", ")}; got ${JSON.stringify(stack)}`);
  const floor = values.floor;
  if (floor !== undefined && !(floor in STACKS)) throw new Error(`--floor: expected one of ${Object.keys(STACKS).join(", ")}; got ${JSON.stringify(floor)}`);
  const unpaired = names.filter((n) => WORKLOADS[n]!.noFloor);
  if (floor !== undefined && unpaired.length) {
    throw new Error(`--floor: ${unpaired.map((n) => `${n} (${WORKLOADS[n]!.noFloor})`).join(", ")} cannot be paired; choose workloads with --only, e.g. --only ${PAIRABLE.join(",")}`);
  }
  const q = values.quick!;
  const o: RunOptions = {
    seconds: parseNumber("seconds", values.seconds, q ? 2 : 5, 0.5, 600),
    warmup: parseNumber("warmup", values.warmup, q ? 0.5 : 1, 0, 60),
    settle: parseNumber("settle", values.settle, q ? 1 : 10, 0, 600),
    runs: parseNumber("runs", values.runs, q ? 1 : 3, 1, 20),
    socketsIdle: parseNumber("sockets-idle", values["sockets-idle"], q ? 2_000 : 20_000, 1, 1_000_000),
    autopipeline: values.autopipeline!,
    profile: values.profile!,
    perf: values.perf!,
    tcp: values.tcp!,
    env: {},
    stack: stack as StackName,
    floor: floor as StackName | undefined,
  };
  const noPerf = o.perf ? perfUnavailable() : undefined;
  if (noPerf) throw new Error(`--perf: ${noPerf}`);
  o.env = parseEnv("env", values.env!);
  return { names, o, label: values.label!, write: !values["no-write"], out: values.out };
}

/** Warms the JIT of all three processes (and Redis' script cache), then settles on the workload itself; both discarded. */
export async function prepare(stack: Stack, w: Workload, o: RunOptions, who = ""): Promise<void> {
  log(`${who}warming up (discarded)…`);
  await load(stack, ["ws-closed", "--seconds", String(Math.max(1, o.warmup)), "--warmup", "0", "--quiet"]);
  // The burst leaves tens of MB of garbage: until collections have shrunk the heap again, GC pauses run
  // about twice as long and the open loop's p99 is 3-5 ms instead of ~2. Runs measure the steady state.
  if (o.settle > 0) {
    log(`${who}settling: ${o.settle} s of the workload itself (discarded)…`);
    await load(stack, [...(w.settle ?? w.args)(o), "--seconds", String(o.settle), "--warmup", "0", "--quiet"]);
  }
}

/** One measured run on a fresh (flushed) private Redis, logged as it ends. */
async function measure(stack: Stack, w: Workload, o: RunOptions, who = ""): Promise<LoadResult> {
  cli(stack.redis, "FLUSHALL"); // the private Redis: keeps payload runs from piling up task data
  cli(stack.redis, "CONFIG", "RESETSTAT");
  const held = redisHeld(stack);
  // perf counts the load generator's measured window: it starts after the generator's own warm-up.
  const counting = o.perf ? perfStat(stack.pids, o.warmup, o.seconds) : undefined;
  const r = await load(stack, [...w.args(o), "--seconds", String(o.seconds), "--warmup", String(o.warmup)]);
  if (counting) {
    const per = (await counting)(r.throughput);
    for (const [role, f] of Object.entries(per)) for (const [k, v] of Object.entries(f)) r.extra[`perf.${role}.${k}`] = v;
  }
  r.extra.redisTopCommands = topCommands(cli(stack.redis, "INFO", "commandstats"), r.verified);
  // Kept for RESULT_TTL_S (a day by default): what sizing Redis for a day of tasks takes.
  const stored = redisHeld(stack);
  if (stack.keepsTasks && stored.tasks > 0) r.extra.redisBytesPerTask = Math.round((stored.bytes - held.bytes) / stored.tasks);
  log(`  ${who}=> ${Math.round(r.throughput).toLocaleString("en-US")} tasks/s, p50 ${r.latency.p50.toFixed(3)} ms, p99 ${r.latency.p99.toFixed(3)} ms` +
    `${r.cpuPerTaskMs !== undefined ? `, CPU ${r.cpuPerTaskMs.toFixed(3)} ms/task` : ""}; ${r.verified} results verified, ` +
    `${r.ok ? "no violations" : `VIOLATIONS ${JSON.stringify(r.violations)}`}` +
    `; load generator ${r.extra.loadgenCpuPerTaskMs} ms/task; machine ${r.extra.machineBusyPct}% busy` +
    `${r.extra.redisBytesPerTask !== undefined ? `; Redis holds ${r.extra.redisBytesPerTask} B per task` : ""}` +
    `\n     redis usec/task by command: ${r.extra.redisTopCommands}` +
    `${counting ? `\n     perf per task (server, worker, redis): CPU ${perfCell(r.extra, "cpuMs", 3)} ms, context switches ${perfCell(r.extra, "switches", 2)}, system calls ${perfCell(r.extra, "syscalls", 1)}` : ""}` +
    `${r.extra.idleSockets !== undefined ? `; ${r.extra.idleSockets} idle sockets, server RSS +${r.extra.rssGrowthMB} MB (${r.extra.bytesPerSocket} B/socket); probe before they opened: p50 ${r.extra.aloneP50} ms, p99 ${r.extra.aloneP99} ms` : ""}`);
  return r;
}

async function main(): Promise<void> {
  let cfg;
  try {
    cfg = parse(process.argv.slice(2));
  } catch (err) {
    console.error(`${(err as Error).message}\n(bun run bench --help shows every flag)`);
    process.exit(2);
  }
  if (!cfg) {
    console.log(usage());
    process.exit(0);
  }
  const { names, o, label, write } = cfg;
  const started = new Date();
  const stamp = started.toISOString().slice(0, 19).replace(/:/g, "-");
  const outDir = cfg.out ?? join(ROOT, "bench", "results");
  const profileDir = o.profile ? join(outDir, "profiles", stamp) : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  const host = machine();
  log(`taskwire bench ${stamp}${o.stack === "taskwire" ? "" : ` of the ${STACKS[o.stack].title}`}: ${names.join(", ")}; ${o.runs} run(s) × ${o.seconds} s after ${o.warmup} s warm-up` +
    `${o.autopipeline ? "; ioredis auto-pipelining ON" : ""}${o.profile ? `; CPU profiles in ${profileDir}` : ""}`);
  if (Object.keys(o.env).length) log(`server and worker env: ${Object.entries(o.env).map(([k, v]) => `${k}=${v}`).join(" ")}`);
  const busyAtStart = await busyBefore(2_000);
  const provisional = busyAtStart > IDLE_MAX_PCT;
  log(`machine: ${host.cores} × ${host.cpu}, ${host.memGiB} GiB, load average ${host.loadavgAtStart.join(" ")}, ${busyAtStart} % busy over the 2 s before the start` +
    `${provisional ? " (not idle: figures are provisional)" : ""}`);

  const reports: WorkloadReport[] = [];
  let failed = false;
  for (const name of names) {
    const w = WORKLOADS[name]!;
    log(`\n## ${name}: ${w.title}`);
    const stack = await startStack(o, o.stack, profileDir ? join(profileDir, name) : undefined);
    const floor = o.floor ? await startStack(o, o.floor).catch(async (err) => (await stopStack(stack, false), Promise.reject(err))) : undefined;
    const runs: LoadResult[] = [];
    const floorRuns: LoadResult[] = [];
    try {
      await prepare(stack, w, o);
      if (floor) await prepare(floor, w, o, `${o.floor}: `);
      for (let i = 1; i <= o.runs; i++) {
        log(`run ${i}/${o.runs}`);
        const r = await measure(stack, w, o);
        runs.push(r);
        if (!r.ok) failed = true;
        if (!floor) continue;
        const f = await measure(floor, w, o, `${o.floor}: `);
        floorRuns.push(f);
        if (!f.ok) failed = true;
        if (r.cpuPerTaskMs !== undefined && f.cpuPerTaskMs !== undefined) log(`  => CPU per task ${(r.cpuPerTaskMs / f.cpuPerTaskMs).toFixed(2)} × the floor's`);
      }
    } finally {
      await stopStack(stack, Boolean(profileDir));
      if (floor) await stopStack(floor, false);
    }
    reports.push({ name, title: w.title, target: w.target, runs, ...(floor ? { floorRuns } : {}) });
  }

  const caption = `taskwire bench ${stamp}${o.stack === "taskwire" ? "" : `: ${STACKS[o.stack].title}`}${label ? ` (${label})` : ""}${o.autopipeline ? ", auto-pipelining on" : ""}${o.tcp ? ", Redis over TCP" : ""}${Object.entries(o.env).map(([k, v]) => `, ${k}=${v}`).join("")} — ${provisional ? "provisional, busy" : "idle"} ${host.cores}-core machine`;
  const perfRows = o.perf ? perfTable(reports, o.floor) : "";
  const table = markdownTable(reports) + (o.floor ? `\n\nAgainst the ${o.floor} floor (${STACKS[o.floor].title}), each run followed by the same run on it:\n\n${floorTable(reports, o.floor)}` : "") +
    (perfRows ? `\n\nCounted by \`perf stat\` in the same runs (medians; CPU is task-clock, to the microsecond):\n\n${perfRows}` : "");
  const md = [
    `# ${caption}`,
    "",
    `Machine: ${host.cores} × ${host.cpu}, ${host.memGiB} GiB, Linux ${host.kernel}, Bun ${host.bun} (its processes with ${host.allocator}: lib/runtime-env.ts), redis-server ${host.redis}, idle vCPU ${host.idlePolling}; load average at start ${host.loadavgAtStart.join(" ")}. Code: ${host.code}.`,
    `${o.stack === "taskwire" ? "" : `Stack: ${STACKS[o.stack].title} (bench/baseline/), not taskwire. `}Load generator, server, ${!STACKS[o.stack].worker ? "no worker " : o.stack === "taskwire" ? "one worker (WORKER_CONCURRENCY default) " : "the stack's one worker "}and redis-server all on this box; server and worker reach Redis ${o.tcp ? "over loopback TCP (--tcp)" : "through its Unix socket, as `npm start`'s private Redis does (--tcp: loopback TCP)"}. Warm-up: ${Math.max(1, o.warmup)} s of the closed loop (JIT), then ${o.settle} s of the workload itself (discarded); then ${o.runs} run(s) of ${o.seconds} s each, each after ${o.warmup} s of its own warm-up; medians shown.`,
    "Latency: /ws closed loop = submit to result; open loop = intended send time to result (coordinated omission avoided), with send-to-result in brackets; /async_task/ = socket connect to result, with send-to-result in brackets.",
    (provisional
      ? `**Provisional**: the machine was ${busyAtStart} % busy before the bench started (something else was running).`
      : `The machine was idle before the bench started (${busyAtStart} % busy over 2 s).`) +
      " \"machine busy\" is the share of all cores in use during the measured window (everything on the box, not only taskwire): near 100 % the figures are CPU-bound." +
      " \"Redis bytes held per task\" is Redis's used_memory at the end of a run, over that at its start, per task it holds: each task's hash and event log, kept for RESULT_TTL_S.",
    "",
    table,
    "",
  ].join("\n");
  console.log("\n" + table);
  if (write) {
    mkdirSync(outDir, { recursive: true });
    const json = { date: started.toISOString(), label, provisional, busyAtStartPct: busyAtStart, machine: host, options: o, workloads: reports.map((r) => ({
      ...r, summary: summarize(r),
      ...(r.floorRuns ? { floorSummary: summarize({ ...r, runs: r.floorRuns }), cpuVsFloor: floorRatios(r) } : {}),
    })) };
    writeFileSync(join(outDir, `${stamp}.json`), JSON.stringify(json, null, 2) + "\n");
    writeFileSync(join(outDir, `${stamp}.md`), md);
    writeFileSync(join(outDir, `${stamp}.svg`), svgChart(reports, caption));
    log(`\nwrote ${join(outDir, stamp)}.json, .md, .svg`);
  }
  if (profileDir) log(`CPU profiles (server, worker): ${profileDir}`);
  process.exit(failed ? 1 : 0);
}

if (import.meta.main) await main();
