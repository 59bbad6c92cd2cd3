/** `taskwire worker`: one worker process (worker.ts main()), until SIGTERM or Ctrl-C drains it. */
import { EXIT, out, parseFlags } from "./common.ts";
import { applyRuntimeEnv } from "../runtime-env.ts";
import { PROCESS_FLAGS, PROCESS_HELP, envWithFlags } from "./processes.ts";

export const HELP = `Usage: taskwire worker [flags]

Runs tasks from the queue in Redis. Start as many as you like, on any machine that reaches the Redis.
SIGTERM or Ctrl-C lets running tasks finish (up to WORKER_GRACE_MS), then exits.

${PROCESS_HELP.redis}
${PROCESS_HELP.concurrency}
${PROCESS_HELP.help}

Exit: 0 drained and stopped, 1 could not start (e.g. Redis unreachable), 2 bad flag or setting.
`;

export async function run(argv: string[]): Promise<number | undefined> {
  const p = parseFlags("worker", argv, PROCESS_FLAGS);
  if (p.flags.help) {
    out(HELP);
    return EXIT.ok;
  }
  applyRuntimeEnv();
  const env = envWithFlags("worker", p, ["redis-url", "concurrency"]);
  const { main } = await import("../../worker.ts");
  await main(env);
  return undefined;
}
