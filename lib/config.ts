/** Every setting taskwire reads from the environment: one zod schema, defaults in plain sight, parsed once. */
import { z } from "zod";

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const bool = z.enum(["0", "1", "true", "false", "yes", "no"]).transform((v) => v === "1" || v === "true" || v === "yes");

export const configSchema = z.object({
  HOST: z.string().min(1).optional(),
  PORT: int(0, 65535).default(8000),
  REDIS_URL: z.string().regex(/^rediss?:\/\//, "must start with redis:// or rediss://").default("redis://127.0.0.1:6379"),
  TASKWIRE_PREFIX: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "letters, digits, _ . - only (1-64 chars)").default("taskwire"),
  WORKER_CONCURRENCY: int(1, 10_000).default(16),
  WORKER_GRACE_MS: int(0, 3_600_000).default(30_000),
  WORKER_HEARTBEAT_MS: int(100, 600_000).default(2_000),
  /** A worker whose heartbeat is older than this is dead and its tasks go back to the queue. */
  WORKER_DEAD_MS: int(300, 3_600_000).default(10_000),
  RESULT_TTL_S: int(1, 365 * 86_400).default(86_400),
  EVENTS_MAX: int(10, 10_000_000).default(100_000),
  TASKWIRE_TOKEN: z.string().min(16, "use at least 16 characters").regex(/^[\x21-\x7e]+$/, "printable ASCII without spaces (it travels in a header and a URL)").optional(),
  /** Comma-separated origins allowed to open WebSockets from a browser, or "*". */
  TASKWIRE_ORIGINS: z.string().refine(
    (v) => v.split(",").map((s) => s.trim()).filter(Boolean).every((o) => o === "*" || /^https?:\/\/[^/\s]+\/?$/i.test(o)),
    'each entry must be an origin like "https://app.example" (scheme and host, optional port), or "*"',
  ).optional(),
  TLS_CERT_FILE: z.string().optional(),
  TLS_KEY_FILE: z.string().optional(),
  MAX_PAYLOAD_BYTES: int(1024, 64 * 1024 * 1024).default(1024 * 1024),
  MAX_ARGS_BYTES: int(16, 64 * 1024 * 1024).default(512 * 1024),
  MAX_JSON_DEPTH: int(2, 1000).default(64),
  MAX_INFLIGHT_PER_SOCKET: int(1, 1_000_000).default(1_000),
  SUBMIT_RATE_PER_SOCKET: int(1, 1_000_000).default(2_000),
  SUBMIT_BURST_PER_SOCKET: int(1, 1_000_000).default(4_000),
  MAX_SOCKETS: int(1, 10_000_000).default(100_000),
  IDLE_TIMEOUT_S: int(0, 960).default(120),
  /** Bytes buffered for a socket past which its progress events are coalesced. */
  SEND_HIGH_WATER_BYTES: int(1024, 1024 * 1024 * 1024).default(1024 * 1024),
  /** A socket that stays past the high-water mark this long is closed with 1013. */
  SLOW_CLIENT_CLOSE_MS: int(100, 600_000).default(10_000),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error", "silent"]).default("info"),
  TASKWIRE_EMBEDDED_REDIS: bool.default(true),
  /** Where `start` keeps local data: the private redis-server's under redis/ (default .taskwire/ in the project). */
  TASKWIRE_DATA_DIR: z.string().min(1).optional(),
});

/** Never echoed in error messages or logs. */
const SECRETS = new Set(["TASKWIRE_TOKEN"]);

export type Config = z.infer<typeof configSchema> & { host: string; hostExplicit: boolean };

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Parses env into a Config; throws ConfigError naming each bad variable and what it accepts. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // Empty strings mean "unset", as in a shell's `FOO= cmd`.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = configSchema.safeParse(cleaned);
  if (!parsed.success) {
    const shown = (k: string) => (SECRETS.has(k) ? "(hidden)" : JSON.stringify(cleaned[k] ?? ""));
    const lines = parsed.error.issues.map((i) => `  ${String(i.path[0])}=${shown(String(i.path[0]))}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join("\n")}`);
  }
  const c = parsed.data;
  if (Boolean(c.TLS_CERT_FILE) !== Boolean(c.TLS_KEY_FILE)) {
    throw new ConfigError("invalid configuration:\n  TLS_CERT_FILE and TLS_KEY_FILE: set both or neither");
  }
  return { ...c, host: c.HOST ?? "127.0.0.1", hostExplicit: c.HOST !== undefined };
}
