/**
 * The allocator settings a server or worker process runs with, and the restart in place that applies them:
 * Bun's allocator (mimalloc) reads its options from the environment once, before any JavaScript runs.
 */

/**
 * Bun's mimalloc, by default, hands the free blocks inside pages still in use back to the OS each time a
 * thread is about to wait (at most every 100 ms per thread), and whole free pages 100 ms after their last
 * use. A process that wakes a thousand times a second for a few microseconds of work each time then takes a
 * page fault, and the kernel's zeroing, for much of what it allocates next. Without the first, taskwire's
 * processes cost 7 % less CPU per task in the open loop and 20 % less in the closed loop; with free pages
 * kept for 1 s, a worker handling 64 KB results costs half as much again. The price is some 20 MB more
 * resident per process after a burst (bench/NOTES.md, 2026-12-03).
 */
export const RUNTIME_ENV: Readonly<Record<string, string>> = {
  MIMALLOC_PURGE_HOLES: "0",
  MIMALLOC_PURGE_DELAY: "1000",
};

/** RUNTIME_ENV's settings that `env` does not set: one an operator sets (to anything) is theirs. */
export function missingRuntimeEnv(env: Record<string, string | undefined>): Record<string, string> {
  const missing: Record<string, string> = {};
  for (const [name, value] of Object.entries(RUNTIME_ENV)) if (env[name] === undefined) missing[name] = value;
  return missing;
}

/**
 * The command line that starts this process again: the same runtime flags, entry point and arguments.
 * A compiled binary's argv[1] is its embedded entry point, which the binary finds by itself.
 */
function ownCommandLine(): string[] {
  const entry = Bun.isStandaloneExecutable ? [] : process.argv.slice(1, 2);
  return [process.execPath, ...process.execArgv, ...entry, ...process.argv.slice(2)];
}

/**
 * Called first by a server's or worker's entry point: when RUNTIME_ENV is not all set, replaces this
 * process (same pid, stdio and arguments; execve) by one started with it. Returns only when there was
 * nothing to do, or the restart failed (said on stderr; the process goes on with Bun's defaults).
 */
export function applyRuntimeEnv(): void {
  const missing = missingRuntimeEnv(process.env);
  if (Object.keys(missing).length === 0 || typeof process.execve !== "function") return;
  try {
    process.execve(process.execPath, ownCommandLine(), { ...process.env, ...missing });
  } catch (err) {
    const settings = Object.entries(missing).map(([k, v]) => `${k}=${v}`).join(" ");
    process.stderr.write(`taskwire: could not restart with ${settings} (${(err as Error).message}); running with Bun's allocator defaults\n`);
  }
}
