/**
 * `bun run bench/ab.ts`: two taskwire stacks side by side, A (this checkout) and B (a git ref, or this
 * checkout with other settings), loaded at the same time round after round, so a host whose speed drifts
 * between minutes slows both alike. Prints each round and the B/A ratio of CPU per task; writes
 * bench/results/<date>-ab.{json,md}. Usage: USAGE below.
 */
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ROOT } from "../tests/helpers/procs.ts";
import { cli } from "../tests/helpers/redis.ts";
import type { LoadResult } from "./load.ts";
import { load, machine, PAIRABLE, parseEnv, parseNumber, prepare, type RunOptions, type Stack, startStack, stopStack, WORKLOADS } from "./run.ts";
import { median } from "./stats.ts";

const USAGE = `Usage: bun run bench/ab.ts [--ref REF] [--env-a NAME=value ...] [--env-b NAME=value ...]
                         [--workload ws-open] [--rate 500] [--rounds 8] [--seconds 5] [--settle 5] [--no-write]

  A runs from this checkout; B from the git commit REF (checked out into a temporary worktree), or from
  this checkout too when only the settings differ (--env-a, --env-b). Each gets a private redis-server,
  a server and a worker; after a warm-up both are loaded at once, --rounds times, with the same workload
  (ws-open at --rate tasks/s each, or ws-closed, async, async-seq at their bench settings). A round's
  ratio is B's CPU per task over A's, server + worker + Redis; the summary gives their mean with a 95 %
  interval, and the median CPU per task of each process on each side.

  Both stacks share the 2 cores, so the machine is busier than in \`bun run bench\` and each figure is
  higher: read the ratio, not the absolute figures.`;

interface Side {
  label: string;
  cwd: string;
  env: Record<string, string>;
}

interface Round {
  a: LoadResult;
  b: LoadResult;
  ratio: number;
}

function parse(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      ref: { type: "string" },
      "env-a": { type: "string", multiple: true, default: [] },
      "env-b": { type: "string", multiple: true, default: [] },
      workload: { type: "string", default: "ws-open" },
      rate: { type: "string" },
      rounds: { type: "string" },
      seconds: { type: "string" },
      settle: { type: "string" },
      "no-write": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return undefined;
  const workloads = ["ws-open", ...PAIRABLE.filter((n) => n !== "ws-open")]; // the default first
  if (!workloads.includes(values.workload!)) throw new Error(`--workload: expected one of ${workloads.join(", ")}; got ${JSON.stringify(values.workload)}`);
  const envA = parseEnv("env-a", values["env-a"]!);
  const envB = parseEnv("env-b", values["env-b"]!);
  if (values.ref === undefined && JSON.stringify(envA) === JSON.stringify(envB)) {
    throw new Error("nothing differs between A and B: give --ref REF, or settings that differ with --env-a / --env-b");
  }
  return {
    ref: values.ref, envA, envB, workload: values.workload!,
    rate: parseNumber("rate", values.rate, 500, 1, 100_000), rounds: parseNumber("rounds", values.rounds, 8, 1, 100),
    seconds: parseNumber("seconds", values.seconds, 5, 0.5, 600), settle: parseNumber("settle", values.settle, 5, 0, 600), write: !values["no-write"],
  };
}

/** A detached worktree of `ref` with this checkout's node_modules; removed by the returned function. */
export function checkout(ref: string): { dir: string; commit: string; remove(): void } {
  const git = (...a: string[]) => {
    const r = Bun.spawnSync(["git", ...a], { cwd: ROOT, stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`git ${a.join(" ")}: ${r.stderr.toString().trim()}`);
    return r.stdout.toString().trim();
  };
  const commit = git("rev-parse", "--short", `${ref}^{commit}`);
  const dir = join(mkdtempSync(join(tmpdir(), "taskwire-ab-")), "tree");
  git("worktree", "add", "--detach", dir, commit);
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  return { dir, commit, remove: () => void (git("worktree", "remove", "--force", dir), rmSync(join(dir, ".."), { recursive: true, force: true })) };
}

const log = (s: string) => process.stderr.write(`${s}\n`);
const cpu = (r: LoadResult) => r.cpuPerTaskMs ?? NaN;
const perTask = (r: LoadResult, role: string) => (r.cpuMs[role] ?? NaN) / Math.max(1, r.tasks);

/** Mean and half-width of a 95 % interval (normal approximation; enough to say whether 1 is inside). */
export function meanInterval(xs: number[]): { mean: number; half: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  if (xs.length < 2) return { mean, half: NaN };
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1));
  return { mean, half: (1.96 * sd) / Math.sqrt(xs.length) };
}

async function main(): Promise<void> {
  let cfg;
  try {
    cfg = parse(process.argv.slice(2));
  } catch (err) {
    console.error(`${(err as Error).message}\n(bun run bench/ab.ts --help shows every flag)`);
    process.exit(2);
  }
  if (!cfg) return void console.log(USAGE);
  const tree = cfg.ref !== undefined ? checkout(cfg.ref) : undefined;
  const withEnv = (env: Record<string, string>) => (Object.keys(env).length ? ` with ${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(" ")}` : "");
  const sides: [Side, Side] = [
    { label: `A: this checkout${withEnv(cfg.envA)}`, cwd: ROOT, env: cfg.envA },
    { label: `B: ${tree ? `commit ${tree.commit}` : "this checkout"}${withEnv(cfg.envB)}`, cwd: tree?.dir ?? ROOT, env: cfg.envB },
  ];
  const w = WORKLOADS[cfg.workload]!;
  const args = cfg.workload === "ws-open" ? ["ws-open", "--rate", String(cfg.rate), "--sockets", "10"] : w.args({} as RunOptions);
  const options = (env: Record<string, string>): RunOptions => ({
    seconds: cfg.seconds, warmup: 1, settle: cfg.settle, runs: cfg.rounds, socketsIdle: 0, autopipeline: false, profile: false, perf: false, tcp: false, env, stack: "taskwire",
  });
  const started = new Date();
  const stamp = started.toISOString().slice(0, 19).replace(/:/g, "-");
  log(`taskwire A/B ${stamp}: ${cfg.workload}${cfg.workload === "ws-open" ? ` at ${cfg.rate} tasks/s each` : ""}, ${cfg.rounds} rounds × ${cfg.seconds} s, both stacks at once\n  ${sides[0].label}\n  ${sides[1].label}`);
  const stacks: Stack[] = [];
  const rounds: Round[] = [];
  let failed = false;
  try {
    for (const side of sides) stacks.push(await startStack(options(side.env), "taskwire", undefined, side.cwd));
    const [a, b] = stacks as [Stack, Stack];
    const workload = { ...w, args: () => args };
    await Promise.all([prepare(a, workload, options(cfg.envA), "A: "), prepare(b, workload, options(cfg.envB), "B: ")]);
    for (let i = 1; i <= cfg.rounds; i++) {
      for (const s of stacks) cli(s.redis, "FLUSHALL");
      const measured = [...args, "--seconds", String(cfg.seconds), "--warmup", "1", "--quiet"];
      // Which load generator starts first alternates, so neither side always gets the head start.
      const [ra, rb] = i % 2 ? await Promise.all([load(a, measured), load(b, measured)]) : (await Promise.all([load(b, measured), load(a, measured)])).reverse() as [LoadResult, LoadResult];
      const round = { a: ra, b: rb, ratio: cpu(rb) / cpu(ra) };
      rounds.push(round);
      if (!ra.ok || !rb.ok) failed = true;
      const fmt = (r: LoadResult) => `${cpu(r).toFixed(3)} ms/task (${["server", "worker", "redis"].map((x) => perTask(r, x).toFixed(3)).join(" + ")})${r.ok ? "" : " VIOLATIONS"}`;
      log(`round ${i}/${cfg.rounds}: A ${fmt(ra)} | B ${fmt(rb)} | B/A ${round.ratio.toFixed(3)}`);
    }
  } finally {
    for (const s of stacks) await stopStack(s, false);
    tree?.remove();
  }
  const ratio = meanInterval(rounds.map((r) => r.ratio));
  const roles = ["server", "worker", "redis"];
  const side = (pick: (r: Round) => LoadResult) => `${median(rounds.map((r) => cpu(pick(r)))).toFixed(3)} (${roles.map((x) => median(rounds.map((r) => perTask(pick(r), x))).toFixed(3)).join(" + ")})`;
  const table = [
    "| side | CPU ms/task, median of rounds (server + worker + redis) | results verified / violations |",
    "| --- | --- | --- |",
    ...(["a", "b"] as const).map((k, i) => `| ${sides[i]!.label} | ${side((r) => r[k])} | ${rounds.reduce((n, r) => n + r[k].verified, 0).toLocaleString("en-US")} / ${rounds.filter((r) => !r[k].ok).length} runs with violations |`),
    "",
    `B/A CPU per task: **${ratio.mean.toFixed(3)}** ± ${Number.isFinite(ratio.half) ? ratio.half.toFixed(3) : "?"} (mean of ${rounds.length} rounds, 95 %); rounds ${rounds.map((r) => r.ratio.toFixed(3)).join(", ")}`,
  ].join("\n");
  console.log(`\n${table}`);
  if (cfg.write) {
    const out = join(ROOT, "bench", "results");
    mkdirSync(out, { recursive: true });
    const host = machine();
    const title = `# taskwire A/B ${stamp}: ${cfg.workload}${cfg.workload === "ws-open" ? ` at ${cfg.rate} tasks/s each` : ""}, both stacks at once`;
    writeFileSync(join(out, `${stamp}-ab.json`), JSON.stringify({ date: started.toISOString(), machine: host, options: cfg, sides, ratio, rounds }, null, 2) + "\n");
    writeFileSync(join(out, `${stamp}-ab.md`), `${title}\n\nMachine: ${host.cores} × ${host.cpu}, Bun ${host.bun} (its processes with ${host.allocator} unless a side says otherwise), redis-server ${host.redis}, idle vCPU ${host.idlePolling}. Code: ${host.code}.\n\n${table}\n`);
    log(`\nwrote ${join(out, stamp)}-ab.json, .md`);
  }
  process.exit(failed ? 1 : 0);
}

if (import.meta.main) await main();
