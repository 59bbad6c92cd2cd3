/** Preloaded by `bun test`: an unhandled rejection or error anywhere fails the run instead of passing silently. */
process.on("unhandledRejection", (err) => {
  console.error("unhandled rejection in test process:", err);
  process.exitCode = 1;
});
