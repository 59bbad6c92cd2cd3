/** `taskwire serve`: the HTTP + WebSocket server alone (server.ts main()), until SIGTERM or Ctrl-C. */
import { EXIT, parseFlags, out } from "./common.ts";
import { applyRuntimeEnv } from "../runtime-env.ts";
import { PROCESS_FLAGS, PROCESS_HELP, envWithFlags } from "./processes.ts";

export const HELP = `Usage: taskwire serve [flags]

Runs the server: HTTP, /ws, /async_task/, the dashboard. Needs a Redis (see \`taskwire start\` for one that
brings its own) and at least one \`taskwire worker\` on the same Redis to run tasks.

${PROCESS_HELP.port}
${PROCESS_HELP.host}
${PROCESS_HELP.redis}
${PROCESS_HELP.help}

Exit: 0 stopped by SIGTERM/SIGINT, 1 could not start (e.g. Redis unreachable), 2 bad flag or setting.
`;

export async function run(argv: string[]): Promise<number | undefined> {
  const p = parseFlags("serve", argv, PROCESS_FLAGS);
  if (p.flags.help) {
    out(HELP);
    return EXIT.ok;
  }
  applyRuntimeEnv();
  const env = envWithFlags("serve", p, ["port", "host", "redis-url"]);
  // From the source tree outside its root (e.g. via npm's bin link) bunfig.toml's preload is not read: register the
  // views plugin here so views/_routes.ts still becomes the route map. A binary has the map compiled in.
  if (!Bun.isStandaloneExecutable) await import("../views-plugin.ts");
  const { main } = await import("../../server.ts");
  await main(env);
  return undefined; // keeps running; main() exits the process on a signal
}
