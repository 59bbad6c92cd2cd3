/** Flags shared by the commands that run taskwire itself (`start`, `serve`, `worker`): each maps to one env variable. */
import { type FlagSpec, type Parsed, intFlag, str, usage, noArguments } from "./common.ts";

export const PROCESS_FLAGS: Record<string, FlagSpec> = {
  port: { type: "string" },
  host: { type: "string" },
  "redis-url": { type: "string" },
  concurrency: { type: "string" },
  help: { type: "boolean", short: "h" },
};

export const PROCESS_HELP = {
  port: "  --port <n>          HTTP and WebSocket port (env PORT, default 8000)",
  host: "  --host <addr>       address to bind (env HOST, default 127.0.0.1)",
  redis: "  --redis-url <url>   the Redis to use (env REDIS_URL, default redis://127.0.0.1:6379)",
  concurrency: "  --concurrency <n>   tasks one worker runs at once (env WORKER_CONCURRENCY, default 64)",
  help: "  -h, --help          this help\n\nEvery other setting is an environment variable (README \"Configuration\").",
};

/** process.env with the given flags applied; `allowed` lists the flags this command takes. */
export function envWithFlags(command: string, p: Parsed, allowed: string[]): Record<string, string | undefined> {
  for (const name of Object.keys(p.flags)) {
    if (name !== "help" && !allowed.includes(name)) throw usage(`--${name} is not a flag of \`taskwire ${command}\`; run \`taskwire ${command} --help\``);
  }
  noArguments(p, command);
  const env = { ...process.env };
  const port = intFlag(p, "port", 0, 65535);
  if (port !== undefined) env.PORT = String(port);
  const host = str(p, "host");
  if (host !== undefined) {
    if (!host.trim()) throw usage("--host is empty; give an address, e.g. --host 0.0.0.0");
    env.HOST = host;
  }
  const redis = str(p, "redis-url");
  if (redis !== undefined) {
    if (!/^rediss?:\/\/./.test(redis)) throw usage(`--redis-url ${JSON.stringify(redis)}: use redis://host:port or rediss://host:port`);
    env.REDIS_URL = redis;
  }
  const concurrency = intFlag(p, "concurrency", 1, 10_000);
  if (concurrency !== undefined) env.WORKER_CONCURRENCY = String(concurrency);
  return env;
}
