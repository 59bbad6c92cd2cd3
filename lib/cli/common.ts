/** What every `taskwire` command shares: exit codes, the flag parser, the server address and token, HTTP calls. */

/** Exit codes scripts can rely on (README "Command line"). */
export const EXIT = {
  ok: 0,
  /** The task failed or was cancelled. */
  taskFailed: 1,
  /** Bad command line or input: unknown flag, bad JSON, unknown task, args the task's schema refuses. */
  usage: 2,
  /** The server cannot be reached, refused the token, or cannot serve now (Redis down, rate limit). */
  unreachable: 3,
  /** No such task (unknown id, or expired after RESULT_TTL_S). */
  notFound: 4,
  /** --timeout passed before the task finished (it keeps running). */
  timeout: 5,
  /** Ctrl-C (the task keeps running). */
  interrupted: 130,
} as const;

/** An error a command reports as one line on stderr, then exits with `exit`. */
export class CliError extends Error {
  override name = "CliError";
  /** `refused`: the server answered and said no (a token it will not take); trying again cannot help. */
  constructor(readonly exit: number, message: string, readonly refused = false) {
    super(message);
  }
}

export const usage = (message: string) => new CliError(EXIT.usage, message);

// --- flags ---

export interface FlagSpec {
  type: "string" | "boolean";
  short?: string;
}

export interface Parsed {
  flags: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/** Parses `--name value`, `--name=value`, `-h` and `--` for one command; errors name the flag and the fix. */
export function parseFlags(command: string, argv: string[], spec: Record<string, FlagSpec>): Parsed {
  const flags: Parsed["flags"] = {};
  const positionals: string[] = [];
  const byShort = new Map(Object.entries(spec).flatMap(([name, s]) => (s.short ? [[s.short, name] as const] : [])));
  const help = `run \`taskwire ${command} --help\` for its flags`;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    let name: string | undefined;
    let inline: string | undefined;
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq < 0 ? undefined : arg.slice(eq + 1);
    } else if (/^-[A-Za-z]$/.test(arg)) {
      name = byShort.get(arg.slice(1));
      if (!name) throw usage(`unknown flag ${arg} for \`taskwire ${command}\`; ${help}`);
    } else {
      positionals.push(arg);
      continue;
    }
    const s = spec[name];
    if (!s) throw usage(`unknown flag --${name} for \`taskwire ${command}\`; ${help}`);
    if (s.type === "boolean") {
      if (inline !== undefined) throw usage(`--${name} takes no value; write just --${name}`);
      flags[name] = true;
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw usage(`--${name} needs a value, e.g. --${name} <value>; ${help}`);
    flags[name] = value;
  }
  return { flags, positionals };
}

/** Refuses positional arguments for a command that takes only flags. */
export function noArguments(p: Parsed, command: string): void {
  if (p.positionals.length) throw usage(`unexpected argument ${JSON.stringify(p.positionals[0])}; \`taskwire ${command}\` takes only flags`);
}

/** The one task id a command takes (status, cancel). */
export function oneTaskId(p: Parsed, command: string): string {
  const [id, extra] = p.positionals;
  if (!id) throw usage(`missing the task id; e.g. taskwire ${command} 0193f7c2-6d1e-7a51-9c3e-41f0d2b8a9e4`);
  if (extra !== undefined) throw usage(`unexpected argument ${JSON.stringify(extra)}; give one task id`);
  return id;
}

export function str(p: Parsed, name: string): string | undefined {
  const v = p.flags[name];
  return typeof v === "string" ? v : undefined;
}

/** A whole number in [min, max] from a flag, or a usage error naming the flag. */
export function intFlag(p: Parsed, name: string, min: number, max: number): number | undefined {
  const raw = str(p, name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || n < min || n > max) throw usage(`--${name} ${JSON.stringify(raw)}: use a whole number from ${min} to ${max}`);
  return n;
}

// --- connection ---

export const CONNECTION_FLAGS: Record<string, FlagSpec> = {
  url: { type: "string" },
  token: { type: "string" },
  help: { type: "boolean", short: "h" },
};

export const CONNECTION_HELP = `  --url <url>      server origin or ws:// URL (env TASKWIRE_URL, default http://127.0.0.1:8000)
  --token <token>  bearer token (env TASKWIRE_TOKEN)
  -h, --help       this help`;

export interface Connection {
  /** http(s)://host:port, no trailing slash. */
  http: string;
  /** ws(s)://host:port/ws */
  ws: string;
  token?: string;
}

/** The server to talk to: --url / --token, else TASKWIRE_URL / TASKWIRE_TOKEN, else the local default. */
export function connection(p: Parsed, env: Record<string, string | undefined> = process.env): Connection {
  const fromFlag = str(p, "url");
  const raw = fromFlag ?? (env.TASKWIRE_URL || "http://127.0.0.1:8000");
  const source = fromFlag !== undefined ? "--url" : env.TASKWIRE_URL ? "TASKWIRE_URL" : "the default URL";
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw usage(`${source} ${JSON.stringify(raw)} is not a URL; use e.g. --url http://127.0.0.1:8000`);
  }
  const scheme = ({ "http:": "http", "https:": "https", "ws:": "http", "wss:": "https" } as Record<string, string>)[u.protocol];
  if (!scheme) throw usage(`${source} ${JSON.stringify(raw)}: use an http://, https://, ws:// or wss:// URL`);
  const http = `${scheme}://${u.host}`;
  const token = str(p, "token") ?? (env.TASKWIRE_TOKEN || undefined);
  return { http, ws: `${scheme === "https" ? "wss" : "ws"}://${u.host}/ws`, token };
}

export function authHeaders(c: Connection): Record<string, string> {
  return c.token ? { authorization: `Bearer ${c.token}` } : {};
}

export function unreachable(c: Connection, why: string): CliError {
  return new CliError(EXIT.unreachable, `cannot reach taskwire at ${c.http} (${why}); start it with \`taskwire start\`, or pass --url / set TASKWIRE_URL`);
}

export function unauthorized(c: Connection): CliError {
  return new CliError(
    EXIT.unreachable,
    c.token ? `${c.http} refused the token (401); check --token / TASKWIRE_TOKEN` : `${c.http} needs a token (401); pass --token or set TASKWIRE_TOKEN`,
    true,
  );
}

/** One HTTP call to the server; network errors and 401 become exit-3 errors, other statuses are the caller's. */
export async function request(c: Connection, method: string, path: string, timeoutMs = 10_000): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(c.http + path, { method, headers: authHeaders(c), signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    const e = err as Error & { code?: string };
    throw unreachable(c, e.name === "TimeoutError" ? `no answer within ${timeoutMs} ms` : e.code === "ConnectionRefused" || e.code === "ECONNREFUSED" ? "connection refused" : e.message);
  }
  if (res.status === 401) throw unauthorized(c);
  return res;
}

/** The body of a non-2xx answer as "code: message", for error lines. */
export async function describeError(res: Response): Promise<string> {
  const text = await res.text().catch(() => "");
  try {
    const e = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
    if (e?.message) return `${e.code ?? res.status}: ${e.message}`;
  } catch {}
  return `HTTP ${res.status}${text ? ` ${text.slice(0, 200)}` : ""}`;
}

/** GET a JSON document; 404 -> exit 4, 503 -> exit 3, anything else non-2xx -> exit 3 with the server's words. */
export async function getJson<T>(c: Connection, path: string): Promise<T> {
  const res = await request(c, "GET", path);
  if (res.status === 404) throw new CliError(EXIT.notFound, await describeError(res));
  if (!res.ok) throw new CliError(EXIT.unreachable, `GET ${path}: ${await describeError(res)}`);
  return (await res.json()) as T;
}

const pending: Promise<void>[] = [];

/** Writes to stdout; cli.ts awaits flushed() before exiting, as process.exit() drops what a slow pipe has not taken. */
export function out(text: string): void {
  pending.push(new Promise((resolve) => process.stdout.write(text, () => resolve())));
}

/** Resolves when every out() write has been taken (or after 10 s, if the reader stopped reading). */
export function flushed(): Promise<unknown> {
  return Promise.race([Promise.all(pending), Bun.sleep(10_000)]);
}

export function printJson(v: unknown): void {
  out(`${JSON.stringify(v, null, process.stdout.isTTY ? 2 : undefined)}\n`);
}

/** Plain text columns for human output (stdout); --json gives the raw document instead. */
export function table(header: string[], rows: (string | number)[][]): string {
  const all = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  return all.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ")).join("\n") + "\n";
}
