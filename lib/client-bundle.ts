/**
 * A Bun macro (imported `with { type: "macro" }`): bundles client/index.ts for browsers at transpile time,
 * so the JS is a string constant inside the importing module; a `bun build --compile` binary carries it
 * without any client/ sources. It shells out to `bun build` because Bun.build cannot run inside a macro.
 */
import { join } from "node:path";

export function bundleClient(): string {
  const entry = join(import.meta.dir, "..", "client", "index.ts");
  const r = Bun.spawnSync([process.execPath, "build", entry, "--target=browser", "--format=esm", "--minify"], { stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
  if (r.exitCode !== 0) throw new Error(`client/index.ts did not bundle (bun build exit ${r.exitCode}):\n${r.stderr.toString()}`);
  return r.stdout.toString();
}
