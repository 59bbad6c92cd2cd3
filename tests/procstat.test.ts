/** The bench's /proc readers (bench/procstat.ts): the wake count it reports per task moves with real sleeps. */
import { expect, test } from "bun:test";
import { cpuMs, machineJiffies, wakes } from "../bench/procstat.ts";

test("wakes() counts each time a process slept and was woken, over all its threads; a gone process is NaN", async () => {
  const child = Bun.spawn(["sleep", "5"]);
  // One thread (a shell), so no helper thread can exit and take its count with it: it waits for "go",
  // then waits on 10 `sleep`s in turn, says "done" and waits on its input again.
  const waiter = Bun.spawn(["sh", "-c", "read go; i=0; while [ $i -lt 10 ]; do sleep 0.01; i=$((i+1)); done; echo done; read stop"], {
    stdin: "pipe", stdout: "pipe",
  });
  try {
    await Bun.sleep(200); // past both start-ups: from here each sleeps in one call
    const before = wakes(child.pid);
    expect(Number.isInteger(before)).toBe(true);
    const waiter0 = wakes(waiter.pid);
    waiter.stdin.write("go\n");
    waiter.stdin.flush();
    const out = waiter.stdout.getReader();
    let said = "";
    for (let i = 0; i < 50 && !said.includes("done"); i++) said += new TextDecoder().decode((await out.read()).value ?? new Uint8Array());
    expect(said).toContain("done");
    expect(wakes(waiter.pid) - waiter0).toBeGreaterThanOrEqual(10);
    // A sleeping child that is never woken stays where it was.
    expect(wakes(child.pid)).toBe(before);
    expect(cpuMs(child.pid)).toBeGreaterThanOrEqual(0);
  } finally {
    child.kill();
    waiter.kill();
    await Promise.all([child.exited, waiter.exited]);
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
