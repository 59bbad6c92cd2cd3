/**
 * `bun run bench --perf`: Linux `perf stat` on server, worker and Redis during a measured run. Its task-clock
 * is CPU time to the microsecond (/proc's is in 10 ms ticks), and it counts what a task costs in context
 * switches and system calls, which is where the open loop's CPU goes (README "Performance").
 */
import type { Pids } from "./procstat.ts";

/** What perf counts for one process, per task. */
export interface PerfFigures {
  /** CPU time (task-clock), ms per task. */
  cpuMs: number;
  /** Context switches per task: each one a sleep and a wake, or a preemption. */
  switches: number;
  /** System calls per task, all kinds. */
  syscalls: number;
}

const EVENTS = ["task-clock", "context-switches", "raw_syscalls:sys_enter"];

/** Why perf cannot count here, or undefined when it can (it needs the binary and the syscall tracepoint). */
export function perfUnavailable(): string | undefined {
  if (!Bun.which("perf")) return "perf not found: install it (Debian: apt-get install linux-perf)";
  const r = Bun.spawnSync(["perf", "stat", "-x,", "-e", EVENTS.join(","), "--", "true"], { stderr: "pipe" });
  const rows = parsePerfCsv(r.stderr.toString());
  if (r.exitCode !== 0 || EVENTS.some((e) => rows[e] === undefined)) {
    return `perf cannot count ${EVENTS.join(", ")} here (perf_event_paranoid, or no tracefs): ${r.stderr.toString().trim().split("\n").pop()}`;
  }
  return undefined;
}

/** perf stat -x, output: event name -> count ("<not counted>" and "<not supported>" rows left out). */
export function parsePerfCsv(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const [value, , event] = line.split(",");
    const n = Number(value);
    if (event && value !== "" && Number.isFinite(n)) out[event] = n;
  }
  return out;
}

/**
 * Counts each process for `seconds`, starting after `delayS` (the load generator's own warm-up), and
 * resolves its counts per task, given how many tasks the run finished per second.
 */
export function perfStat(pids: Pids, delayS: number, seconds: number): Promise<(tasksPerS: number) => Record<string, PerfFigures>> {
  return Bun.sleep(delayS * 1000).then(async () => {
    const runs = Object.entries(pids).map(([role, pid]) => {
      const p = Bun.spawn(["perf", "stat", "-x,", "-e", EVENTS.join(","), "-p", String(pid), "--", "sleep", String(seconds)], { stdout: "ignore", stderr: "pipe" });
      return new Response(p.stderr).text().then((text) => [role, parsePerfCsv(text)] as const);
    });
    const counted = await Promise.all(runs);
    return (tasksPerS: number) => {
      const tasks = Math.max(1, tasksPerS * seconds);
      return Object.fromEntries(counted.map(([role, c]) => [role, {
        cpuMs: (c["task-clock"] ?? NaN) / tasks, // perf reports task-clock in ms
        switches: (c["context-switches"] ?? NaN) / tasks,
        syscalls: (c["raw_syscalls:sys_enter"] ?? NaN) / tasks,
      }]));
    };
  });
}
