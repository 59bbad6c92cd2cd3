/** `npm start`: server + worker from the source tree, with a private redis-server when none answers (lib/launcher.ts). */
import { join } from "node:path";
import { ConfigError, loadConfig } from "../lib/config.ts";
import { launch } from "../lib/launcher.ts";
import { makeLogger } from "../lib/log.ts";

const root = join(import.meta.dir, "..");
const log = makeLogger("start");
try {
  const config = loadConfig();
  const bun = process.execPath;
  process.exitCode = await launch(config, {
    serverCmd: [bun, "run", join(root, "server.ts")],
    workerCmd: [bun, "run", join(root, "worker.ts")],
    dataDir: config.TASKWIRE_DATA_DIR ?? join(root, ".taskwire"),
    env: { ...process.env },
  }, log);
} catch (err) {
  log.error(err instanceof ConfigError ? err.message : (err as Error).message);
  process.exitCode = 2;
}
process.exit();
