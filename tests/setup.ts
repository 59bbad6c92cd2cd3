/** Preloaded by `bun test`: an unhandled rejection anywhere fails the run instead of passing silently. */
// The per-test timeout (30 s: tests start real processes) is `--timeout` in package.json's test script:
// bunfig.toml does not read one (oven-sh/bun#7789), and a preload's setDefaultTimeout reaches only the first file.
process.on("unhandledRejection", (err) => {
  console.error("unhandled rejection in test process:", err);
  process.exitCode = 1;
});
