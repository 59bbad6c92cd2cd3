/**
 * `taskwire start` / `npm start`: server + one worker + a private redis-server when none answers (lib/launcher.ts).
 * The children are this same program: `<binary> serve` in a compiled build, `bun run cli.ts serve` in the source tree.
 */
import { join } from "node:path";
import { ConfigError, loadConfig } from "../config.ts";
import { launch } from "../launcher.ts";
import { makeLogger } from "../log.ts";
import { CliError, EXIT, parseFlags, out } from "./common.ts";
import { PROCESS_FLAGS, PROCESS_HELP, envWithFlags } from "./processes.ts";

export const HELP = `Usage: taskwire start [flags]

Runs everything on one machine: the server, one worker, and — when nothing answers at REDIS_URL and it is
on loopback — a private redis-server with its data and AOF under ./.taskwire/ (or TASKWIRE_DATA_DIR;
TASKWIRE_EMBEDDED_REDIS=false turns that off). Ctrl-C or SIGTERM stops them all, in order.

${PROCESS_HELP.port}
${PROCESS_HELP.host}
${PROCESS_HELP.redis}
${PROCESS_HELP.concurrency}
${PROCESS_HELP.help}

Exit: 0 stopped by a signal, 1 a child died or Redis could not be started, 2 bad flag or setting.
`;

const ROOT = join(import.meta.dir, "..", "..");

/** argv that runs another `taskwire <command>`: the binary itself, or bun on cli.ts from the source tree. */
export function selfCommand(command: string): string[] {
  return Bun.isStandaloneExecutable ? [process.execPath, command] : [process.execPath, "run", join(ROOT, "cli.ts"), command];
}

export async function run(argv: string[]): Promise<number> {
  const p = parseFlags("start", argv, PROCESS_FLAGS);
  if (p.flags.help) {
    out(HELP);
    return EXIT.ok;
  }
  const env = envWithFlags("start", p, ["port", "host", "redis-url", "concurrency"]);
  let config;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(EXIT.usage, err.message);
    throw err;
  }
  const log = makeLogger("start", config.LOG_LEVEL);
  try {
    return await launch(config, {
      serverCmd: selfCommand("serve"),
      workerCmd: selfCommand("worker"),
      // A binary keeps its data where it is run; the source tree keeps it in the checkout (.gitignored).
      dataDir: config.TASKWIRE_DATA_DIR ?? join(Bun.isStandaloneExecutable ? process.cwd() : ROOT, ".taskwire"),
      // bun reads bunfig.toml (the views plugin preload) from the working directory.
      cwd: Bun.isStandaloneExecutable ? undefined : ROOT,
      env,
    }, log);
  } catch (err) {
    log.error((err as Error).message);
    return 1;
  }
}
