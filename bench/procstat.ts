/** CPU time and memory of other processes, read from /proc (Linux only): what a task costs server, worker and Redis. */
import { readFileSync, readdirSync } from "node:fs";

// USER_HZ is 100 on every Linux we run on; `getconf CLK_TCK` confirms it once at start-up.
const HZ = (() => {
  const out = Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString().trim();
  const n = Number(out);
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/** utime + stime of `pid` in milliseconds (resolution 1000/HZ, i.e. 10 ms), or NaN if it is gone. */
export function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1000) / HZ; // fields 14 and 15 of the whole line
  } catch {
    return NaN;
  }
}

/** A field of /proc/<pid>/status in kB (VmRSS, VmHWM, ...), or NaN. */
export function statusKb(pid: number, field: "VmRSS" | "VmHWM" | "RssAnon"): number {
  try {
    const m = readFileSync(`/proc/${pid}/status`, "utf8").match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** Open file descriptor limit of `pid` (soft), or NaN. */
export function fdLimit(pid: number | "self"): number {
  try {
    const m = readFileSync(`/proc/${pid}/limits`, "utf8").match(/^Max open files\s+(\d+)/m);
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

export type Pids = Record<string, number>;

/** CPU ms of each role's process now. */
export function snapshot(pids: Pids): Record<string, number> {
  return Object.fromEntries(Object.entries(pids).map(([role, pid]) => [role, cpuMs(pid)]));
}

/** CPU ms each role spent since `before` (an earlier snapshot). */
export function cpuSince(pids: Pids, before: Record<string, number>): Record<string, number> {
  const now = snapshot(pids);
  return Object.fromEntries(Object.keys(pids).map((role) => [role, now[role]! - before[role]!]));
}

/**
 * Times `pid` went to sleep and was woken again (voluntary context switches, all its threads). On a
 * VM each wake costs far more CPU than the work it brings, and a count, unlike CPU time, repeats
 * from run to run: it shows a saving that CPU time's noise hides (README "Performance").
 */
export function wakes(pid: number): number {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return NaN;
  }
  // A thread that has exited takes its count with it (Linux keeps no per-process total of other
  // processes' switches), so a difference is only sound while the threads stay: the bench's server,
  // worker and Redis keep theirs; a test runner's helper threads come and go.
  let n = 0;
  for (const tid of tids) {
    try {
      const m = readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8").match(/^voluntary_ctxt_switches:\s+(\d+)/m);
      n += m ? Number(m[1]) : 0;
    } catch {
      // gone between the listing and the read
    }
  }
  return n;
}

/**
 * Whole-machine CPU counters (jiffies, 1/100 s): busy and total. Total is wall time × cores (/proc/uptime)
 * and busy is total minus idle and iowait (/proc/stat). Not the sum of /proc/stat's busy fields: on a
 * tickless kernel those are sampled by the scheduler tick, which misses the short bursts of an open loop
 * (seen: 26 % busy by the ticks while the idle counters said 49 %); idle time is measured, not sampled.
 */
export function machineJiffies(): { busy: number; total: number } {
  try {
    const stat = readFileSync("/proc/stat", "utf8");
    const f = stat.split("\n", 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    const cores = stat.match(/^cpu\d+ /gm)?.length ?? 1;
    const total = Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]) * 100 * cores;
    return { busy: total - (f[3] ?? 0) - (f[4] ?? 0), total };
  } catch {
    return { busy: NaN, total: NaN };
  }
}
