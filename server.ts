/** The server process: config -> Redis -> one Bun.serve for HTTP and WebSocket over the views router. SIGTERM closes sockets with 1001. */
import { closeApp, createApp, type App } from "./lib/app.ts";
import { ConfigError, loadConfig, type Config } from "./lib/config.ts";
import { type Logger, makeLogger } from "./lib/log.ts";
import { applyRuntimeEnv } from "./lib/runtime-env.ts";
import { createRouter } from "./lib/router.ts";
import routes from "./views/_routes.ts";

export interface RunningServer {
  app: App;
  url: string;
  close(): Promise<void>;
}

export async function startServer(config: Config, log: Logger): Promise<RunningServer> {
  const app = await createApp(config, log);
  const router = createRouter(app, routes);
  const tls = config.TLS_CERT_FILE && config.TLS_KEY_FILE ? { cert: Bun.file(config.TLS_CERT_FILE), key: Bun.file(config.TLS_KEY_FILE) } : undefined;
  const server = Bun.serve({
    hostname: config.host,
    port: config.PORT,
    fetch: router.fetch,
    websocket: router.websocket,
    tls,
    // Bun's default is 128 MiB. Up to 4x the limit, views read the body and answer with a JSON error
    // naming MAX_PAYLOAD_BYTES; past that Bun refuses with a bare 413 without buffering it.
    maxRequestBodySize: config.MAX_PAYLOAD_BYTES * 4,
    error(err) {
      log.error("unhandled request error", err);
      return Response.json({ error: { code: "internal", message: "internal error" } }, { status: 500 });
    },
  });
  app.server = server;
  const scheme = tls ? "https" : "http";
  const url = `${scheme}://${config.host.includes(":") ? `[${config.host}]` : config.host}:${server.port}`;
  log.info(`listening on ${url} (ws${tls ? "s" : ""}://…/ws, /async_task/), redis ${redactUrl(config.REDIS_URL)}${app.submits ? " (lone submits and the inbox over Bun's Redis client)" : ""}, prefix ${config.TASKWIRE_PREFIX}, views: ${Object.keys(routes).join(" ")}`);
  if (!config.TASKWIRE_TOKEN) {
    log.info(config.hostExplicit ? `no TASKWIRE_TOKEN: every client that reaches ${config.host} can submit tasks` : "no TASKWIRE_TOKEN: bound to loopback only (set HOST and TASKWIRE_TOKEN to serve other machines)");
  }
  let closing: Promise<void> | undefined;
  return { app, url, close: () => (closing ??= closeApp(app)) };
}

export function redactUrl(u: string): string {
  return u.replace(/\/\/[^@/]*@/, "//***@").replace(/([?&]password=)[^&#]*/, "$1***");
}

/** Runs until SIGTERM/SIGINT; used by `bun run server.ts` and `taskwire serve`. */
export async function main(env = process.env): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
  const log = makeLogger(`server ${process.pid}`, config.LOG_LEVEL);
  let running: RunningServer;
  try {
    running = await startServer(config, log);
  } catch (err) {
    if (err instanceof ConfigError) {
      log.error(err.message);
      process.exit(2);
    }
    log.error(`cannot start: ${(err as Error).message} (REDIS_URL=${redactUrl(config.REDIS_URL)}; is redis-server running?)`);
    process.exit(1);
  }
  const stop = (sig: string) => {
    log.info(`${sig}: closing sockets (1001) and stopping`);
    running.close().finally(() => process.exit(0));
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
}

if (import.meta.main) {
  applyRuntimeEnv();
  await main();
}
