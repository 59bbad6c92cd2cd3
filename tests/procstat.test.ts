/** The bench's /proc readers (bench/procstat.ts): the wake count it reports per task moves with real sleeps. */
import { expect, test } from "bun:test";
import { cpuMs, wakes } from "../bench/procstat.ts";

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
