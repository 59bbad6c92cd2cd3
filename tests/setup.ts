/** Preloaded by `bun test`: a 30 s default per test (tests start real processes), and an unhandled rejection fails the run. */
import { setDefaultTimeout } from "bun:test";

// bunfig.toml has no per-test timeout setting; a preload's setDefaultTimeout applies to every file.
setDefaultTimeout(30_000);

process.on("unhandledRejection", (err) => {
  console.error("unhandled rejection in test process:", err);
  process.exitCode = 1;
});
