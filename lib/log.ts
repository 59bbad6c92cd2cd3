/** A leveled logger writing one line per event to stderr, tagged with the process role. */
type Level = "debug" | "info" | "warn" | "error" | "silent";
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 };

export interface Logger {
  debug(msg: string, extra?: unknown): void;
  info(msg: string, extra?: unknown): void;
  warn(msg: string, extra?: unknown): void;
  error(msg: string, extra?: unknown): void;
}

export function makeLogger(role: string, level: Level = "info"): Logger {
  const min = ORDER[level];
  const write = (lvl: Level, msg: string, extra?: unknown) => {
    if (ORDER[lvl] < min) return;
    const tail = extra === undefined ? "" : " " + (extra instanceof Error ? (extra.stack ?? extra.message) : JSON.stringify(extra));
    process.stderr.write(`${new Date().toISOString()} ${lvl.padEnd(5)} [${role}] ${msg}${tail}\n`);
  };
  return {
    debug: (m, e) => write("debug", m, e),
    info: (m, e) => write("info", m, e),
    warn: (m, e) => write("warn", m, e),
    error: (m, e) => write("error", m, e),
  };
}
