/** Every setting taskwire reads from the environment: one zod schema, defaults in plain sight, parsed once. */
import { z } from "zod";

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const bool = z.enum(["0", "1", "true", "false", "yes", "no"]).transform((v) => v === "1" || v === "true" || v === "yes");

/** The longest path a Unix socket address holds on Linux (sun_path, less its terminating NUL). */
export const MAX_SOCKET_PATH = 107;

export const configSchema = z.object({
  HOST: z.string().min(1).optional(),
  PORT: int(0, 65535).default(8000),
  REDIS_URL: z.string().regex(/^(rediss?(\+cluster)?|unix):\/\//, "must start with redis:// or rediss:// (or redis+cluster://host:port,host:port for a Redis Cluster, unix:///path/to/redis.sock for a local socket)")
    .refine((v) => !/^rediss?\+cluster:/.test(v) || parseClusterUrl(v) !== undefined, "a cluster URL lists nodes as host:port separated by commas, e.g. redis+cluster://10.0.0.1:7000,10.0.0.2:7000")
    .refine((v) => !v.startsWith("unix:") || parseUnixUrl(v) !== undefined, `a socket URL is unix:// then an absolute path of at most ${MAX_SOCKET_PATH} bytes, optionally ?db=N&password=..., e.g. unix:///run/redis/redis.sock`)
    .default("redis://127.0.0.1:6379"),
  /** Comma-separated host:port of some Redis Cluster nodes (any masters or replicas): selects cluster mode. */
  REDIS_CLUSTER_NODES: z.string().refine((v) => parseNodes(v) !== undefined, "list nodes as host:port separated by commas, e.g. 10.0.0.1:7000,10.0.0.2:7000").optional(),
  /** Queue shards (each on its own cluster slot); every server and worker of a fleet must use the same number. Default 1 on one Redis, 8 on a cluster. */
  QUEUE_SHARDS: int(1, 256).optional(),
  TASKWIRE_PREFIX: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "letters, digits, _ . - only (1-64 chars)").default("taskwire"),
  WORKER_CONCURRENCY: int(1, 10_000).default(64),
  WORKER_GRACE_MS: int(0, 3_600_000).default(30_000),
  /** The client per-task commands go through on one Redis (a server's submit; a worker's move, start, progress, outcome): Bun's built-in one (lib/bun-redis.ts), or ioredis. */
  TASK_REDIS_CLIENT: z.enum(["bun", "ioredis"]).default("bun"),
  WORKER_HEARTBEAT_MS: int(100, 600_000).default(2_000),
  /** A worker whose heartbeat is older than this is dead and its tasks go back to the queue. */
  WORKER_DEAD_MS: int(300, 3_600_000).default(10_000),
  /** How often one task may lose its worker (crash, freeze) before it ends `failed` code `exhausted`. */
  TASK_MAX_LOSSES: int(0, 1_000).default(3),
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
  /** POST /tasks: the same bucket per client address (lib/rate-limit.ts). */
  SUBMIT_RATE_PER_CLIENT: int(1, 1_000_000).default(2_000),
  SUBMIT_BURST_PER_CLIENT: int(1, 1_000_000).default(4_000),
  /** Behind a proxy every client has the proxy's address: then take the one it adds to X-Forwarded-For. */
  TRUST_PROXY: bool.default(false),
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

export type Config = z.infer<typeof configSchema> & { host: string; hostExplicit: boolean; queueShards: number };

export interface ClusterTarget {
  nodes: { host: string; port: number }[];
  username?: string;
  password?: string;
  tls: boolean;
}

/** "host:port,host:port" -> nodes, or undefined if any entry is malformed. */
export function parseNodes(list: string): ClusterTarget["nodes"] | undefined {
  const nodes = list.split(",").map((s) => s.trim()).filter(Boolean).map((hp) => {
    const m = /^(\[[0-9a-fA-F:.]+\]|[^\s:/@\[\]]+):(\d{1,5})$/.exec(hp);
    const port = m ? Number(m[2]) : 0;
    return m && port >= 1 && port <= 65535 ? { host: m[1]!.replace(/^\[|\]$/g, ""), port } : undefined;
  });
  return nodes.length > 0 && nodes.every(Boolean) ? (nodes as ClusterTarget["nodes"]) : undefined;
}

/** redis+cluster://[user:pass@]host:port,host:port (rediss+cluster:// for TLS) -> its nodes, or undefined. */
export function parseClusterUrl(url: string): ClusterTarget | undefined {
  const m = /^(rediss?)\+cluster:\/\/(?:([^@/]*)@)?([^/?#]+)\/?$/.exec(url);
  const nodes = m ? parseNodes(m[3]!) : undefined;
  if (!m || !nodes) return undefined;
  const [user, pass] = m[2] === undefined ? [] : m[2].includes(":") ? [m[2].slice(0, m[2].indexOf(":")), m[2].slice(m[2].indexOf(":") + 1)] : [undefined, m[2]];
  const dec = (s: string | undefined) => (s ? decodeURIComponent(s) : undefined);
  return { nodes, username: dec(user), password: dec(pass), tls: m[1] === "rediss" };
}

export interface UnixTarget {
  path: string;
  db?: number;
  password?: string;
}

/** unix:///path/to/redis.sock[?db=N][&password=...], as redis-py and redis-rb spell a socket URL; undefined if malformed. */
export function parseUnixUrl(url: string): UnixTarget | undefined {
  const m = /^unix:\/\/(\/[^?#]+)(?:\?([^#]*))?$/.exec(url);
  if (!m) return undefined;
  const path = decodeURIComponent(m[1]!);
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) return undefined;
  const target: UnixTarget = { path };
  for (const [k, v] of new URLSearchParams(m[2] ?? "")) {
    if (k === "db" && /^\d{1,5}$/.test(v)) target.db = Number(v);
    else if (k === "password" && v !== "") target.password = v;
    else return undefined;
  }
  return target;
}

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
  if (c.REDIS_CLUSTER_NODES !== undefined) {
    if (cleaned.REDIS_URL !== undefined) {
      throw new ConfigError("invalid configuration:\n  REDIS_URL and REDIS_CLUSTER_NODES: set one of them (a cluster with a password: REDIS_URL=redis+cluster://user:pass@host:port,host:port)");
    }
    // One place says where Redis is from here on: the cluster URL form.
    c.REDIS_URL = `redis+cluster://${c.REDIS_CLUSTER_NODES.split(",").map((s) => s.trim()).filter(Boolean).join(",")}`;
  }
  const queueShards = c.QUEUE_SHARDS ?? (parseClusterUrl(c.REDIS_URL) ? 8 : 1);
  if (Boolean(c.TLS_CERT_FILE) !== Boolean(c.TLS_KEY_FILE)) {
    throw new ConfigError("invalid configuration:\n  TLS_CERT_FILE and TLS_KEY_FILE: set both or neither");
  }
  return { ...c, host: c.HOST ?? "127.0.0.1", hostExplicit: c.HOST !== undefined, queueShards };
}
