/** The bench's /proc readers (bench/procstat.ts): the wake count it reports per task moves with real sleeps. */
import { expect, test } from "bun:test";
import { cpuMs, machineJiffies, wakes } from "../bench/procstat.ts";

test("wakes() counts each time a process slept and was woken, over all its threads; a gone process is NaN", async () => {
  const child = Bun.spawn(["sleep", "5"]);
  try {
    await Bun.sleep(200); // past its start-up: from here it sleeps in one call
    const before = wakes(child.pid);
    expect(Number.isInteger(before)).toBe(true);
    // This process sleeps 10 times (a timer each), so it is woken at least 10 times.
    const self0 = wakes(process.pid);
    for (let i = 0; i < 10; i++) await Bun.sleep(5);
    expect(wakes(process.pid) - self0).toBeGreaterThanOrEqual(10);
    // A sleeping child that is never woken stays where it was.
    expect(wakes(child.pid)).toBe(before);
    expect(cpuMs(child.pid)).toBeGreaterThanOrEqual(0);
  } finally {
    child.kill();
    await child.exited;
  }
  expect(wakes(child.pid)).toBeNaN();
});

test("machineJiffies() counts a process spinning on one core as that core busy, out of wall time × cores", async () => {
  const cores = (await Bun.file("/proc/stat").text()).match(/^cpu\d+ /gm)!.length;
  const a = machineJiffies();
  const t0 = performance.now();
  const spin = Bun.spawn([process.execPath, "-e", "const t = Date.now(); while (Date.now() - t < 1000) {}"]);
  await spin.exited;
  const b = machineJiffies();
  const wall = performance.now() - t0;
  // Total is wall time × cores (jiffies are 10 ms; /proc/uptime has 10 ms steps), whatever else runs.
  expect(Math.abs((b.total - a.total) * 10 - wall * cores)).toBeLessThan(30 * cores);
  const share = (b.busy - a.busy) / (b.total - a.total);
  expect(share).toBeGreaterThanOrEqual(0.8 / cores); // the spinner alone: ~1 s of one core in a ~1.05 s window
  expect(share).toBeLessThanOrEqual(1);
});
