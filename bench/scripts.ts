/**
 * `bun run bench/scripts.ts [--ref REF]`: what each per-task Lua script costs Redis, hot, against the
 * claimed floor's scripts (bench/baseline/relay.ts), and against the scripts of commit REF when given.
 * Runs a task's life in phases on a private redis-server (submit; start one at a time, or taken 64 at
 * once; outcome), pipelined, sides in turn each round, and prints µs per call from INFO commandstats (the
 * script with the commands inside it) and from Redis's own CPU (parsing and replies too).
 */
import { parseArgs } from "node:util";
import Redis from "ioredis";
import { newTaskId } from "../lib/ids.ts";
import { makeKeys } from "../lib/keys.ts";
import { type Scripts, scriptSource } from "../lib/scripts.ts";
import { defaultTaskOptions, storedOptions } from "../tasks/define.ts";
import { getTask } from "../tasks/index.ts";
import { startRedis } from "../tests/helpers/redis.ts";
import { checkout, meanInterval } from "./ab.ts";
import { CLAIM_LUA, STORE_OUTCOME_LUA, STORE_TASK_LUA } from "./baseline/relay.ts";
import { median } from "./stats.ts";

const USAGE = `Usage: bun run bench/scripts.ts [--ref REF] [--tasks 20000] [--rounds 8]

  Runs each per-task script --tasks times a phase on a private redis-server, --rounds times, and prints
  the µs per task Redis spent in the scripts and in all; with --ref, the scripts of that commit too, and
  B/A of Redis's CPU per task.`;

/** A usage error: the message, a pointer to --help, exit 2 (as bench/run.ts). */
function usage(message: string): never {
  process.stderr.write(`${message}\n(bun run bench/scripts.ts --help)\n`);
  process.exit(2);
}

let values: { tasks?: string; rounds?: string; ref?: string; help?: boolean };
try {
  ({ values } = parseArgs({
    options: { tasks: { type: "string", default: "20000" }, rounds: { type: "string", default: "8" }, ref: { type: "string" }, help: { type: "boolean", short: "h" } },
  }));
} catch (err) {
  usage((err as Error).message);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const TASKS = Number(values.tasks);
const ROUNDS = Number(values.rounds);
if (!(Number.isInteger(TASKS) && TASKS > 0 && TASKS <= 200_000)) usage(`--tasks: a whole number from 1 to 200000; got ${JSON.stringify(values.tasks)}`);
if (!(Number.isInteger(ROUNDS) && ROUNDS > 0 && ROUNDS <= 50)) usage(`--rounds: a whole number from 1 to 50; got ${JSON.stringify(values.rounds)}`);

const CHUNK = 500;
const TTL = 600;
// What a bench submit of test_task stores (bench/load.ts), with the options such a task carries.
const ARGS = '{"task_id":1}';
const OPTS = storedOptions({ ...defaultTaskOptions, ...getTask("test_task")!.options });
const RESULT = "1";
const WID = "w-0123456789ab";
const PER_TASK: (keyof Scripts)[] = ["twEnqueueQueued", "twTakeStart", "twStart", "twFinish"];

const server = await startRedis();
const redis = new Redis(server.port, "127.0.0.1");
const k = makeKeys("tw");
const queue = k.queue();
const active = k.active(WID);

/** script name -> sha, per side. */
const shas = new Map<string, string>();
const load = async (side: string, name: string, lua: string) => void shas.set(`${side} ${name}`, (await redis.script("LOAD", lua)) as string);
const sides = ["this checkout"];
for (const name of PER_TASK) await load(sides[0]!, name, scriptSource(name));
if (values.ref !== undefined) {
  // The commit's checkout is needed only until its scripts are loaded into Redis.
  const tree = checkout(values.ref);
  try {
    sides.push(`commit ${tree.commit}`);
    const theirs = (await import(`${tree.dir}/lib/scripts.ts`)) as typeof import("../lib/scripts.ts");
    for (const name of PER_TASK) await load(sides[1]!, name, theirs.scriptSource(name));
  } finally {
    tree.remove();
  }
}
const compared = sides.length > 1;
await load("floor", "store", STORE_TASK_LUA);
await load("floor", "claim", CLAIM_LUA);
await load("floor", "outcome", STORE_OUTCOME_LUA);
const evalsha = (side: string, name: string, keys: string[], args: (string | number)[]) =>
  ["EVALSHA", shas.get(`${side} ${name}`)!, keys.length, ...keys, ...args];

/** Sends `commands` in pipelines of CHUNK; resolves when Redis has answered them all. */
async function send(commands: (string | number)[][]) {
  for (let i = 0; i < commands.length; i += CHUNK) {
    const p = redis.pipeline();
    for (const c of commands.slice(i, i + CHUNK)) p.call(String(c[0]), ...c.slice(1));
    for (const [err] of (await p.exec())!) if (err) throw err;
  }
}

async function counters() {
  const [stats, cpu] = await Promise.all([redis.info("commandstats"), redis.info("cpu")]);
  const evals = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(stats);
  const used = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(cpu)![1]);
  return { calls: Number(evals?.[1] ?? 0), usec: Number(evals?.[2] ?? 0), cpuUs: (used("used_cpu_user") + used("used_cpu_sys")) * 1e6 };
}

/** µs per task in one phase: inside the scripts (commandstats), and Redis's CPU over the phase. */
async function phase(commands: (string | number)[][], tasks = commands.length) {
  await redis.config("RESETSTAT");
  const before = await counters();
  await send(commands);
  const after = await counters();
  return { script: (after.usec - before.usec) / tasks, cpu: (after.cpuUs - before.cpuUs) / tasks };
}

/** figures[phase][side] */
const figures = new Map<string, Map<string, { script: number[]; cpu: number[] }>>();
function record(name: string, side: string, f: { script: number; cpu: number }) {
  if (!figures.has(name)) figures.set(name, new Map());
  const bySide = figures.get(name)!;
  if (!bySide.has(side)) bySide.set(side, { script: [], cpu: [] });
  bySide.get(side)!.script.push(f.script);
  bySide.get(side)!.cpu.push(f.cpu);
}
const fresh = () => Array.from({ length: TASKS }, () => newTaskId());

async function taskwire(side: string) {
  const submit = (id: string) => evalsha(side, "twEnqueueQueued", [k.task(id), queue], ["test_task", ARGS, OPTS, TTL, "", k.inbox("s1"), id]);
  await redis.flushall();
  // The open loop's shape: each task taken by BLMOVE, then started.
  let ids = fresh();
  record("submit", side, await phase(ids.map(submit)));
  await send(ids.map(() => ["LMOVE", queue, active, "RIGHT", "LEFT"]));
  record("start", side, await phase(ids.map((id) => evalsha(side, "twStart", [k.task(id), k.events(id)], [WID, TTL]))));
  record("outcome", side, await phase(ids.map((id) => evalsha(side, "twFinish", [k.task(id), k.events(id), k.channel(id)], [id, "succeeded", RESULT, TTL]))));
  // The closed loop's shape: taken and started 64 at a time.
  await redis.flushall();
  ids = fresh();
  await send(ids.map(submit));
  const takes = Array.from({ length: Math.ceil(TASKS / 64) }, () => evalsha(side, "twTakeStart", [queue, active], [64, WID, TTL, k.task(""), k.events("")]));
  record("take and start, 64 at once", side, await phase(takes, TASKS));
}

async function floor() {
  await redis.flushall();
  const ids = fresh();
  record("submit", "floor", await phase(ids.map((id) => evalsha("floor", "store", [k.task(id), queue], [id, ARGS, k.inbox("s1")]))));
  record("start", "floor", await phase(ids.map((id) => evalsha("floor", "claim", [k.task(id)], [WID]))));
  record("outcome", "floor", await phase(ids.map((id) => evalsha("floor", "outcome", [k.task(id), k.events(id)], [k.inbox("s1"), id, RESULT]))));
}

try {
  for (let round = 1; round <= ROUNDS; round++) {
    // Sides in turn, the order swapped each round, so a host that drifts slows each alike.
    const order = round % 2 ? [...sides, "floor"] : ["floor", ...sides].reverse();
    for (const side of order) await (side === "floor" ? floor() : taskwire(side));
    process.stderr.write(`round ${round}/${ROUNDS}: done\n`);
  }
} finally {
  redis.disconnect();
  await server.stop();
}

const fmt = (xs: number[]) => `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`;
const ratio = (b: number[], a: number[]) => {
  const r = meanInterval(b.map((x, i) => x / a[i]!));
  return `${r.mean.toFixed(3)} ± ${r.half.toFixed(3)}`;
};
console.log(`\nPer-task scripts, hot: ${TASKS.toLocaleString("en")} tasks a phase, pipelined ${CHUNK} at a time, ${ROUNDS} rounds; µs per task, median (min–max)\n`);
console.log(`| phase | side | in the scripts (commandstats) | Redis CPU |${compared ? " B/A of Redis CPU (mean, 95 %) |" : ""}`);
console.log(`| --- | --- | --- | --- |${compared ? " --- |" : ""}`);
for (const [name, bySide] of figures) {
  for (const [side, f] of bySide) {
    const vs = compared && side === sides[1] ? ` ${ratio(f.cpu, bySide.get(sides[0]!)!.cpu)} |` : compared ? " |" : "";
    console.log(`| ${name} | ${side} | ${fmt(f.script)} | ${fmt(f.cpu)} |${vs}`);
  }
}
