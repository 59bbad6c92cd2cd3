/** The dashboard in real headless Chromium against a real stack: clean load, its charts, the run form (progress, result, cancel), a killed worker, dead-letter retry, the token. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, type Page, chromium } from "playwright-core";
import { ROOT, type ServerProc, startServer } from "./helpers/procs.ts";
import { cli } from "./helpers/redis.ts";
import { type Stack, startStack } from "./helpers/stack.ts";
import { waitFor } from "./helpers/util.ts";
import { openSocket } from "./helpers/ws.ts";

const TOKEN = "browser-test-token-0123456789";
/** Short heartbeats so a killed worker is declared gone within about a second. */
const fast = { WORKER_HEARTBEAT_MS: "200", WORKER_DEAD_MS: "1000" };
const OUT = join(ROOT, "tests", "output", `browser-${new Date().toISOString().replace(/[:.]/g, "-")}`);

let stack: Stack;
let guarded: ServerProc;
let browser: BrowserContext;
let profile: string;

beforeAll(async () => {
  mkdirSync(OUT, { recursive: true });
  stack = await startStack("browser", { env: fast });
  guarded = await startServer({ ...stack.env, TASKWIRE_TOKEN: TOKEN });
  profile = mkdtempSync(join(tmpdir(), "taskwire-chromium-"));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1400, height: 1000 },
  });
}, 60_000);
afterAll(async () => {
  await browser?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await guarded?.kill("SIGKILL");
  await stack?.stop();
});

/** Opens a page that records every console error, page error, failed request and HTTP error status. */
async function open(url: string): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ""}`));
  page.on("response", (r) => r.status() >= 400 && problems.push(`HTTP ${r.status()}: ${r.url()}`));
  await page.goto(url);
  return { page, problems };
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });

async function fillRunForm(page: Page, task: string, args: Record<string, string>): Promise<void> {
  await page.waitForSelector("#run-submit:not([disabled])");
  await page.selectOption("#run-task", task);
  for (const [name, value] of Object.entries(args)) await page.fill(`[name="arg-${name}"]`, value);
}

test("the dashboard loads with no console errors and no failed requests, and shows the queue, the worker and the run form", async () => {
  const { page, problems } = await open(`${stack.server.http}/`);
  await page.waitForSelector('#conn[data-state="live"]');
  const pid = stack.workers[0]!.pid;
  await page.waitForSelector(`#workers tr[data-pid="${pid}"] .state.alive`);
  expect(await page.textContent("#queues tbody")).toContain("default");
  expect(await page.$$eval("#run-task option", (os) => os.map((o) => (o as HTMLOptionElement).value))).toEqual(["test_task", "countdown", "fail"]);
  expect(await page.getAttribute('link[rel="icon"]', "href")).toStartWith("data:image/svg+xml");
  // Live: the worker's heartbeat cell keeps being redrawn from pushed snapshots.
  await page.waitForFunction(() => document.querySelectorAll("#tp-chart polyline, #tp-chart line").length >= 2);
  await shot(page, "dashboard");
  expect(problems).toEqual([]);
  await page.close();
  const notFound = await fetch(`${stack.server.http}/no/such/page`);
  expect(notFound.status).toBe(404);
  expect(await notFound.json()).toMatchObject({ error: { code: "not_found" } });
  expect((await fetch(`${stack.server.http}/favicon.ico`)).headers.get("content-type")).toBe("image/svg+xml");
});

test("the sockets card charts the WebSockets connected each second: 25 idle sockets show, then go", async () => {
  const { page, problems } = await open(`${stack.server.http}/`);
  await page.waitForFunction(() => document.querySelectorAll("#sock-chart polyline").length >= 1);
  const now = async () => Number(await page.textContent("#sock-now"));
  const before = await now();
  expect(before).toBeGreaterThanOrEqual(1); // this page's own socket
  const idle = await Promise.all(Array.from({ length: 25 }, () => openSocket(`${stack.server.ws}/ws`)));
  await page.waitForFunction((n) => Number(document.querySelector("#sock-now")?.textContent) === n, before + 25, { timeout: 5_000 });
  // The chart's scale rose with them: its top is at least the count.
  expect(Number(await page.textContent("#sock-card .chart-max"))).toBeGreaterThanOrEqual(before + 25);
  await shot(page, "sockets");
  for (const s of idle) s.close();
  await page.waitForFunction((n) => Number(document.querySelector("#sock-now")?.textContent) === n, before, { timeout: 5_000 });
  expect(problems).toEqual([]);
  await page.close();
});

test("the backlog card charts the tasks waiting each second: more than the worker runs at once show, then drain", async () => {
  const { page, problems } = await open(`${stack.server.http}/`);
  await page.waitForFunction(() => document.querySelectorAll("#q-chart polyline").length >= 1);
  expect(await page.textContent("#q-now")).toBe("0");
  // One worker runs 64 at once (WORKER_CONCURRENCY's default): 100 tasks of 2.5 s leave 36 waiting that long.
  const submit = (i: number) => fetch(`${stack.server.http}/tasks`, { method: "POST", body: JSON.stringify({ task: "test_task", args: { task_id: i, delay_ms: 2_500 } }) });
  const ids = await Promise.all(Array.from({ length: 100 }, (_, i) => submit(i).then((r) => r.json()).then((j) => (j as { id: string }).id)));
  await page.waitForFunction(() => Number(document.querySelector("#q-card .chart-max")?.textContent) >= 36, null, { timeout: 5_000 });
  await shot(page, "backlog");
  await page.waitForFunction(() => document.querySelector("#q-now")?.textContent === "0", null, { timeout: 10_000 });
  const states = () => Promise.all(ids.map((id) => fetch(`${stack.server.http}/tasks/${id}`).then((r) => r.json()).then((t) => (t as { state: string }).state)));
  await waitFor(async () => (await states()).every((st) => st === "succeeded"), 15_000, "the 100 tasks to finish");
  expect(problems).toEqual([]);
  await page.close();
}, 30_000);

test("the Redis memory card charts used_memory each second, against maxmemory when one is set, and warns when nearly full", async () => {
  const { page, problems } = await open(`${stack.server.http}/`);
  await page.waitForFunction(() => document.querySelectorAll("#mem-chart polyline").length >= 1);
  expect(await page.textContent("#mem-limit")).toContain("no maxmemory set");
  // The figure is Redis's own: within a factor of two of what INFO says now.
  const used = () => Number(/used_memory:(\d+)/.exec(cli(stack.redis, "info", "memory"))![1]);
  const [n, unit] = (await page.textContent("#mem-now"))!.split(" ");
  const shown = Number(n) * 1024 ** ["B", "KiB", "MiB", "GiB"].indexOf(unit!);
  expect(shown).toBeGreaterThan(used() / 2);
  expect(shown).toBeLessThan(used() * 2);
  const limit = Math.round(used() * 1.1);
  cli(stack.redis, "config", "set", "maxmemory", String(limit));
  try {
    await page.waitForFunction(() => document.querySelector("#mem-card")?.classList.contains("warn"), null, { timeout: 5_000 });
    expect(await page.textContent("#mem-now")).toMatch(/ · (8\d|9\d|1\d\d) %$/);
    expect(await page.textContent("#mem-limit")).toContain("nearly full");
    // The chart's top is the limit: the label over it reads as the maxmemory line does.
    const limitText = /maxmemory (\S+ \S+):/.exec((await page.textContent("#mem-limit"))!)![1]!;
    expect(await page.textContent("#mem-card .chart-max")).toBe(limitText);
    await shot(page, "redis-memory-nearly-full");
  } finally {
    cli(stack.redis, "config", "set", "maxmemory", "0");
  }
  await page.waitForFunction(() => !document.querySelector("#mem-card")?.classList.contains("warn"), null, { timeout: 5_000 });
  expect(problems).toEqual([]);
  await page.close();
});

test("running countdown from the form moves the progress bar to the end and shows the result", async () => {
  const { page, problems } = await open(`${stack.server.http}/`);
  await fillRunForm(page, "countdown", { steps: "8", interval_ms: "120" });
  await page.click("#run-submit");
  // Seen part-way: the bar is fed by live progress events, not filled at the end.
  await page.waitForFunction(() => {
    const v = Number(document.querySelector("#run-progress")?.getAttribute("aria-valuenow"));
    return v > 0 && v < 100;
  });
  await page.waitForFunction(() => document.querySelector("#run-state")?.textContent === "succeeded", null, { timeout: 10_000 });
  expect(await page.getAttribute("#run-progress", "aria-valuenow")).toBe("100");
  expect(await page.textContent("#run-progress-text")).toBe("8 / 8");
  expect(await page.textContent("#run-result")).toBe('"done"');
  const id = (await page.textContent("#run-id"))!;
  expect((await (await fetch(`${stack.server.http}/tasks/${id}`)).json()).state).toBe("succeeded");
  // The feed lists it among the recent tasks.
  await page.waitForSelector(`#recent tr[data-task="${id}"] .state.succeeded`);
  await shot(page, "run-countdown");
  expect(problems).toEqual([]);
  await page.close();
});

test("Cancel stops a running task: the page shows cancelled and the server agrees", async () => {
  const { page, problems } = await open(`${stack.server.http}/`);
  await fillRunForm(page, "countdown", { steps: "500", interval_ms: "50" });
  await page.click("#run-submit");
  await page.waitForFunction(() => Number(document.querySelector("#run-progress")?.getAttribute("aria-valuenow")) > 0);
  await page.click("#run-cancel");
  await page.waitForFunction(() => document.querySelector("#run-state")?.textContent === "cancelled", null, { timeout: 10_000 });
  expect(await page.textContent("#run-result")).toContain("cancelled");
  expect(Number(await page.getAttribute("#run-progress", "aria-valuenow"))).toBeLessThan(100);
  expect(await page.isDisabled("#run-cancel")).toBe(true);
  const id = (await page.textContent("#run-id"))!;
  expect((await (await fetch(`${stack.server.http}/tasks/${id}`)).json()).state).toBe("cancelled");
  await shot(page, "run-cancelled");
  expect(problems).toEqual([]);
  await page.close();
});

test("a worker killed with SIGKILL shows up as gone", async () => {
  const victim = await stack.addWorker();
  const { page, problems } = await open(`${stack.server.http}/`);
  await page.waitForSelector(`#workers tr[data-pid="${victim.pid}"] .state.alive`);
  await victim.kill("SIGKILL");
  await page.waitForSelector(`#workers tr.gone[data-pid="${victim.pid}"] .state.gone`, { timeout: 10_000 });
  // The other worker is still alive.
  await page.waitForSelector(`#workers tr[data-pid="${stack.workers[0]!.pid}"] .state.alive`);
  expect(await page.textContent("#workers-count")).toContain("1 gone");
  await shot(page, "worker-gone");
  expect(problems).toEqual([]);
  await page.close();
});

test("an exhausted task is listed under dead letters, and Retry runs it again as a new task", async () => {
  const res = await fetch(`${stack.server.http}/tasks`, {
    method: "POST",
    body: JSON.stringify({ task: "fail", args: { message: "dead on purpose" }, options: { retries: 1, backoff_ms: 0 } }),
  });
  const { id } = (await res.json()) as { id: string };
  const { page, problems } = await open(`${stack.server.http}/`);
  await page.waitForSelector(`#dead tr[data-dead="${id}"]`, { timeout: 10_000 });
  expect(await page.textContent(`#dead tr[data-dead="${id}"]`)).toContain("dead on purpose");
  await shot(page, "dead-letters");
  await page.click(`#dead tr[data-dead="${id}"] button.retry`);
  await page.waitForSelector(`#dead tr[data-dead="${id}"]`, { state: "detached", timeout: 10_000 });
  const dead = cli(stack.redis, "lrange", `${stack.env.TASKWIRE_PREFIX}:dead`, "0", "-1");
  expect(dead).not.toContain(id);
  expect(problems).toEqual([]);
  await page.close();
});

test("the token is respected: without it a 401 page explains; with it the page, its feed and the run form work", async () => {
  const page = await browser.newPage();
  for (const q of ["", "?token=wrong-token-000000000000"]) {
    const res = await page.goto(`${guarded.http}/${q}`);
    expect(res?.status()).toBe(401);
    expect(await page.textContent("#unauthorized")).toContain("?token=");
  }
  await shot(page, "unauthorized");
  await page.close();
  const { page: ok, problems } = await open(`${guarded.http}/?token=${TOKEN}`);
  await ok.waitForSelector('#conn[data-state="live"]');
  // No task has finished through this server yet: its latency chart says so, with no made-up scale over it.
  await ok.waitForFunction(() => document.querySelector("#lat-card .chart-note")?.textContent !== "");
  expect(await ok.textContent("#lat-card .chart-note")).toBe("no task finished here in the last minute");
  expect(await ok.textContent("#lat-card .chart-max")).toBe("");
  await fillRunForm(ok, "countdown", { steps: "3", interval_ms: "20" });
  await ok.click("#run-submit");
  await ok.waitForFunction(() => document.querySelector("#run-state")?.textContent === "succeeded", null, { timeout: 10_000 });
  expect(await ok.textContent("#run-result")).toBe('"done"');
  // Once one has, the chart draws it and puts its scale's top in milliseconds.
  await ok.waitForFunction(() => /ms$/.test(document.querySelector("#lat-card .chart-max")?.textContent ?? ""), null, { timeout: 5_000 });
  expect(await ok.textContent("#lat-card .chart-note")).toBe("");
  expect(problems).toEqual([]);
  await ok.close();
  // The API stays JSON: a script without the token gets the JSON 401, not the page.
  const api = await fetch(`${guarded.http}/`);
  expect(api.status).toBe(401);
  expect(await api.json()).toMatchObject({ error: { code: "unauthorized" } });
}, 20_000);
