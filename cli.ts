#!/usr/bin/env bun
/** The `taskwire` command: dispatches to one small module per command in lib/cli/ (compiled into dist/taskwire by scripts/build.ts). */
import { CliError, EXIT, flushed, out } from "./lib/cli/common.ts";
import { versionLine } from "./lib/cli/version.ts";

type Command = { run(argv: string[]): Promise<number | undefined> };

// Static import() paths: the bundler follows them into the binary, and `submit` never loads the server's code.
const COMMANDS: Record<string, { about: string; load(): Promise<Command> }> = {
  start: { about: "server + worker (+ a private redis-server when none answers)", load: () => import("./lib/cli/start.ts") },
  serve: { about: "the HTTP/WebSocket server alone", load: () => import("./lib/cli/serve.ts") },
  worker: { about: "one worker alone", load: () => import("./lib/cli/worker.ts") },
  submit: { about: "run a task, with live progress; the result as JSON on stdout", load: () => import("./lib/cli/submit.ts") },
  status: { about: "a task's state as JSON (--wait: follow it to the end)", load: () => import("./lib/cli/status.ts") },
  cancel: { about: "cancel a task", load: () => import("./lib/cli/cancel.ts") },
  workers: { about: "live workers and what they run", load: () => import("./lib/cli/workers.ts") },
  queues: { about: "queue depth, delayed, running, dead", load: () => import("./lib/cli/queues.ts") },
};

export const HELP = `Usage: taskwire <command> [flags]

Commands:
${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(9)}${c.about}`).join("\n")}

\`taskwire <command> --help\` shows a command's flags. \`taskwire --version\` prints the version and commit.
Client commands read TASKWIRE_URL (default http://127.0.0.1:8000) and TASKWIRE_TOKEN.

Exit codes: 0 ok, 1 task failed or cancelled, 2 bad usage or input, 3 server unreachable / token refused /
unavailable, 4 no such task, 5 --timeout passed, 130 interrupted.
`;

/** Runs one command line; resolves with the exit code, or undefined for a long-running process. */
export async function main(argv: string[]): Promise<number | undefined> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    if (name === undefined) process.stderr.write(HELP);
    else out(HELP);
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (name === "--version" || name === "-v" || name === "version") {
    out(`${versionLine()}\n`);
    return EXIT.ok;
  }
  const cmd = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!cmd) {
    throw new CliError(EXIT.usage, `unknown command ${JSON.stringify(name)}; the commands are ${Object.keys(COMMANDS).join(", ")} (taskwire --help)`);
  }
  return (await cmd.load()).run(rest);
}

if (import.meta.main) {
  let code: number | undefined;
  try {
    code = await main(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof CliError)) throw err;
    process.stderr.write(`taskwire: ${err.message}\n`);
    code = err.exit;
  }
  if (code !== undefined) {
    await flushed();
    process.exit(code);
  }
}
