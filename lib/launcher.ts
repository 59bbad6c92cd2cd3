/**
 * `npm start` / `taskwire start`: server + worker as child processes, on the Redis at REDIS_URL, or on
 * a private redis-server started here (data and AOF under .taskwire/) when none answers: the embedded
 * default. Ctrl-C or SIGTERM stops every child, in order, and waits for each.
 */
import { mkdirSync } from "node:fs";
import { connect } from "node:net";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { type Config, MAX_SOCKET_PATH, parseUnixUrl } from "./config.ts";
import type { Logger } from "./log.ts";
import { missingRuntimeEnv } from "./runtime-env.ts";

export interface LaunchOptions {
  /** argv that starts a server / a worker (source tree: bun run server.ts; binary: taskwire serve). */
  serverCmd: string[];
  workerCmd: string[];
  /** Local data (the private redis-server's under redis/): TASKWIRE_DATA_DIR, or .taskwire/. */
  dataDir: string;
  /** The children's working directory (default: this process's). */
  cwd?: string;
  env: Record<string, string | undefined>;
}

export const INSTALL_REDIS_HINT =
  "redis-server is not installed. Install it with `sudo apt-get install -y redis-server` (Debian/Ubuntu), " +
  "`brew install redis` (macOS), or point REDIS_URL at a running Redis.";

/** Where a Redis is reached: a TCP host and port, or a Unix socket path. */
type Address = { host: string; port: number } | { path: string };

const show = (a: Address) => ("path" in a ? `unix://${a.path}` : `${a.host}:${a.port}`);

function answers(at: Address, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const sock = connect(at);
    const done = (ok: boolean) => {
      sock.destroy();
      resolvePromise(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once("error", () => done(false));
    sock.once("connect", () => {
      sock.write("PING\r\n");
      sock.once("data", (d) => done(d.toString().startsWith("+PONG") || d.toString().startsWith("-NOAUTH")));
    });
  });
}

const isLoopback = (h: string) => h === "localhost" || h.startsWith("127.") || h === "::1" || h === "[::1]";

/**
 * Makes sure a Redis answers at config.REDIS_URL, starting a private one if allowed. A private one also
 * listens on a Unix socket in its data dir, and `url` is then that socket's: cheaper for Redis per command than
 * loopback TCP, so the children use it (the TCP port stays open for redis-cli and other machines' tools).
 */
export async function ensureRedis(config: Config, dataDir: string, log: Logger): Promise<{ proc: Subprocess; url: string } | undefined> {
  // A cluster is never started here; its clients report unreachable nodes themselves.
  if (/^rediss?\+cluster:/.test(config.REDIS_URL)) return undefined;
  const unix = parseUnixUrl(config.REDIS_URL);
  const url = unix ? undefined : new URL(config.REDIS_URL);
  const host = url ? url.hostname.replace(/^\[|\]$/g, "") : "";
  const at: Address = unix ? { path: unix.path } : { host, port: Number(url!.port || 6379) };
  if (await answers(at)) {
    log.info(`using the Redis at ${show(at)}`);
    return undefined;
  }
  if (!config.TASKWIRE_EMBEDDED_REDIS || (!unix && !isLoopback(host))) {
    throw new Error(`nothing answers at ${show(at)}; start Redis there or fix REDIS_URL`);
  }
  const bin = Bun.which("redis-server");
  if (!bin) throw new Error(INSTALL_REDIS_HINT);
  const dir = resolve(join(dataDir, "redis"));
  mkdirSync(dir, { recursive: true });
  // The socket sits with the data unless its path would not fit a socket address; then TCP only.
  const ownSocket = join(dir, "redis.sock");
  const socket = unix ? unix.path : Buffer.byteLength(ownSocket) <= MAX_SOCKET_PATH ? ownSocket : undefined;
  const listen = "path" in at ? ["--port", "0"] : ["--port", String(at.port), "--bind", host === "localhost" ? "127.0.0.1" : host];
  const proc = Bun.spawn(
    [bin, ...listen, ...(socket ? ["--unixsocket", socket, "--unixsocketperm", "700"] : []), "--dir", dir,
      "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--maxmemory-policy", "noeviction",
      "--logfile", join(dir, "redis.log")],
    { stdout: "ignore", stderr: "inherit" },
  );
  const deadline = Date.now() + 10_000;
  while (!(await answers(at))) {
    if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode}; see ${join(dir, "redis.log")}`);
    if (Date.now() > deadline) throw new Error(`redis-server did not answer at ${show(at)} within 10 s; see ${join(dir, "redis.log")}`);
    await Bun.sleep(50);
  }
  const where = "path" in at ? show(at) : `${show(at)}${socket ? ` and unix://${socket}` : ""}`;
  log.info(`started a private redis-server (pid ${proc.pid}) on ${where}, data and AOF in ${dir}`);
  return { proc, url: unix || !socket ? config.REDIS_URL : socketUrl(socket, url!) };
}

/** The socket's URL, keeping the database and password that `tcp` (the REDIS_URL) names. */
function socketUrl(path: string, tcp: URL): string {
  const q = new URLSearchParams();
  const db = tcp.pathname.replace(/^\//, "");
  if (db) q.set("db", db);
  if (tcp.password) q.set("password", decodeURIComponent(tcp.password));
  return `unix://${path}${q.size ? `?${q}` : ""}`;
}

/** Starts Redis if needed, then the server and one worker; resolves when everything has stopped. */
export async function launch(config: Config, opts: LaunchOptions, log: Logger): Promise<number> {
  const started = await ensureRedis(config, opts.dataDir, log);
  const redis = started?.proc;
  // The children start with their allocator settings already set: none needs to restart itself for them.
  const env = { ...opts.env, ...missingRuntimeEnv(opts.env), ...(started ? { REDIS_URL: started.url } : {}) };
  const children: { name: string; proc: Subprocess }[] = [];
  const spawnChild = (name: string, cmd: string[]) => {
    const proc = Bun.spawn(cmd, { env, cwd: opts.cwd, stdout: "inherit", stderr: "inherit", stdin: "ignore" });
    children.push({ name, proc });
    log.info(`${name} started, pid ${proc.pid}`);
    return proc;
  };
  const server = spawnChild("server", opts.serverCmd);
  const worker = spawnChild("worker", opts.workerCmd);

  let stopping: Promise<void> | undefined;
  const stop = (why: string) =>
    (stopping ??= (async () => {
      log.info(`${why}: stopping server, worker${redis ? " and redis-server" : ""}`);
      for (const c of [...children].reverse()) if (c.proc.exitCode === null) c.proc.kill("SIGTERM");
      const slow = setTimeout(() => {
        for (const c of children) if (c.proc.exitCode === null) c.proc.kill("SIGKILL");
      }, Number(config.WORKER_GRACE_MS) + 5_000);
      await Promise.all(children.map((c) => c.proc.exited));
      clearTimeout(slow);
      if (redis) {
        redis.kill("SIGTERM"); // redis-server flushes its AOF on SIGTERM
        await redis.exited;
      }
      log.info("stopped");
    })());
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
  log.info(`taskwire is up: http://${config.host}:${config.PORT}/ (dashboard), ws://${config.host}:${config.PORT}/async_task/ and /ws`);

  const first = await Promise.race([server.exited.then((c) => ["server", c] as const), worker.exited.then((c) => ["worker", c] as const)]);
  if (!stopping) {
    log.error(`${first[0]} exited unexpectedly with ${first[1]}`);
    await stop(`${first[0]} exited`);
    return 1;
  }
  await stopping;
  return 0;
}
