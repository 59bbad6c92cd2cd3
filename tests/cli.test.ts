/** The `taskwire` CLI (cli.ts) run as a subprocess against a real redis-server, server and worker: output, exit codes, help. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { bar, describe as describe_ } from "../lib/cli/progress.ts";
import { cli, run, spawnKept } from "./helpers/cli.ts";
import { ROOT, type ServerProc, startServer } from "./helpers/procs.ts";
import { type Stack, startStack } from "./helpers/stack.ts";
import { freePort, freePortContaining, uniquePrefix, waitFor } from "./helpers/util.ts";

const TOKEN = "cli-test-token-0123456789";
let stack: Stack;
/** A second server on the same Redis with a token and its own prefix that no worker serves: tasks stay queued. */
let locked: ServerProc;
let url: Record<string, string>;

beforeAll(async () => {
  stack = await startStack("cli", { workers: 1 });
  locked = await startServer({ REDIS_URL: stack.redis.url, TASKWIRE_PREFIX: uniquePrefix("cli-locked"), TASKWIRE_TOKEN: TOKEN });
  url = { TASKWIRE_URL: stack.server.http };
});
afterAll(async () => {
  await locked?.kill("SIGKILL");
  await stack?.stop();
});

describe("submit", () => {
  test("countdown: the result as JSON on stdout, one progress line per step on stderr, exit 0", async () => {
    const r = await cli(["submit", "countdown", "--args", '{"steps": 3, "interval_ms": 20}'], url);
    expect(r.stderr).toMatch(/accepted as \S+[\s\S]*progress 1\/3\n[\s\S]*progress 2\/3\n[\s\S]*progress 3\/3\n/);
    expect(r.stdout).toBe('"done"\n');
    expect(r.code).toBe(0);
  });

  test("test_task result keeps its JSON type; --url as a ws:// URL works too", async () => {
    const r = await cli(["submit", "test_task", "--args", '{"task_id": "007"}', "--url", `${stack.server.ws}/ws`]);
    expect(r.stdout).toBe('"007"\n');
    expect(r.code).toBe(0);
  });

  test("--args @file reads the object from a file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "taskwire-cli-"));
    try {
      writeFileSync(join(dir, "args.json"), '{"task_id": 42}');
      const r = await cli(["submit", "test_task", "--args", `@${join(dir, "args.json")}`], url);
      expect(r.stdout).toBe("42\n");
      expect(r.code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a large result reaches a slow reader whole before the CLI exits", async () => {
    const dir = mkdtempSync(join(tmpdir(), "taskwire-cli-"));
    try {
      writeFileSync(join(dir, "args.json"), JSON.stringify({ task_id: "x".repeat(300_000) }));
      const cmd = `${process.execPath} run cli.ts submit test_task -q --args @${join(dir, "args.json")} | (sleep 1; wc -c)`;
      const r = await run(["sh", "-c", cmd], { env: url });
      expect(r.stdout.trim()).toBe(String(300_000 + 3)); // the quotes and the newline
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a failing task exits 1 with its message on stderr and nothing on stdout", async () => {
    const r = await cli(["submit", "fail", "--args", '{"message": "the disk is on fire"}'], url);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("failed (task_error): the disk is on fire");
    expect(r.stdout).toBe("");
  });

  test("bad --args JSON exits 2 and names --args; nothing is submitted", async () => {
    const before = await queued(stack.server.http);
    const r = await cli(["submit", "countdown", "--args", "{steps: 3"], url);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--args is not valid JSON");
    expect(r.stderr).toContain(`--args '{"steps": 3}'`);
    expect(await queued(stack.server.http)).toEqual(before);
  });

  test("--args that is JSON but not an object exits 2", async () => {
    const r = await cli(["submit", "countdown", "--args", "[3]"], url);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--args must be a JSON object, got an array");
  });

  test("args the task refuses exit 2 naming the field; an unknown task exits 2 naming it", async () => {
    const bad = await cli(["submit", "countdown", "--args", '{"steps": 0}'], url);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("invalid_args");
    expect(bad.stderr).toContain("steps");
    const unknown = await cli(["submit", "no_such_task"], url);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown_task");
    expect(unknown.stderr).toContain("no_such_task");
  });

  test("usage errors exit 2 and name the flag or argument", async () => {
    const flag = await cli(["submit", "countdown", "--steps", "3"], url);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain("unknown flag --steps");
    const missing = await cli(["submit"], url);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("missing the task name");
    const value = await cli(["submit", "countdown", "--args"], url);
    expect(value.code).toBe(2);
    expect(value.stderr).toContain("--args needs a value");
    const timeout = await cli(["submit", "countdown", "--timeout", "soon"], url);
    expect(timeout.code).toBe(2);
    expect(timeout.stderr).toContain("--timeout");
    const badUrl = await cli(["submit", "countdown", "--url", "ftp://x"]);
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toContain("--url");
    const command = await cli(["sumbit"]);
    expect(command.code).toBe(2);
    expect(command.stderr).toContain('unknown command "sumbit"');
  });

  test("an unreachable server exits 3", async () => {
    const r = await cli(["submit", "countdown", "--args", '{"steps": 1}', "--url", `http://127.0.0.1:${await freePort()}`]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("cannot reach taskwire");
  });

  test("a server with a token: none or a wrong one exits 3; --token or TASKWIRE_TOKEN gets in", async () => {
    const none = await cli(["submit", "test_task", "--args", '{"task_id": 1}', "--url", locked.http]);
    expect(none.code).toBe(3);
    expect(none.stderr).toContain("needs a token");
    const wrong = await cli(["submit", "test_task", "--args", '{"task_id": 1}', "--url", locked.http, "--token", "not-the-token-at-all"]);
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toContain("refused the token");
    const ok = await cli(["submit", "test_task", "--args", '{"task_id": 1}', "--detach", "--token", TOKEN], { TASKWIRE_URL: locked.http });
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).id).toBeString();
    const status = await cli(["status", JSON.parse(ok.stdout).id], { TASKWIRE_URL: locked.http, TASKWIRE_TOKEN: TOKEN });
    expect(JSON.parse(status.stdout)).toMatchObject({ task: "test_task", state: "queued" });
    const workers = await cli(["workers"], { TASKWIRE_URL: locked.http });
    expect(workers.code).toBe(3);
  });

  test("the same --key twice runs one task: both print its id", async () => {
    const key = `k-${Math.random()}`;
    const a = await cli(["submit", "test_task", "--args", '{"task_id": 5, "delay_ms": 200}', "--key", key, "--detach"], url);
    const b = await cli(["submit", "test_task", "--args", '{"task_id": 5, "delay_ms": 200}', "--key", key], url);
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
    expect(b.stdout).toBe("5\n");
    expect(b.stderr).toContain(`accepted as ${JSON.parse(a.stdout).id}`);
  });

  test("--timeout exits 5 and says the task keeps running", async () => {
    const r = await cli(["submit", "countdown", "--args", '{"steps": 2, "interval_ms": 3000}', "--timeout", "0.5"], url);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/no result within --timeout 0.5 s; task \S+ keeps running/);
  });

  test("a server restart mid-task: submit reconnects, resumes after its last seq, and shows every step once", async () => {
    // A port with 401 in it: the reconnect once took "401" anywhere in its error line (the URL included) for a refused token and gave up.
    const env = { ...stack.env, PORT: String(await freePortContaining("401")) };
    let srv = await startServer(env);
    const p = spawnCli(["submit", "countdown", "--args", '{"steps": 6, "interval_ms": 250}', "--url", srv.http]);
    try {
      await waitFor(() => p.stderr().includes("progress 2/6"), 10_000, `progress 2/6\n${p.stderr()}`);
      await srv.kill("SIGKILL");
      srv = await startServer(env);
      expect(await p.proc.exited).toBe(0);
      expect(p.stdout()).toBe('"done"\n');
      expect(p.stderr()).toContain("reconnecting");
      expect([...(p.stderr().match(/progress \d\/6/g) ?? [])]).toEqual([1, 2, 3, 4, 5, 6].map((i) => `progress ${i}/6`));
    } finally {
      p.proc.kill("SIGKILL");
      await srv.kill("SIGKILL");
    }
  });

  test("Ctrl-C exits 130 and says the task keeps running", async () => {
    const p = spawnCli(["submit", "countdown", "--args", '{"steps": 3, "interval_ms": 2000}', "--url", stack.server.http]);
    await waitFor(() => p.stderr().includes("accepted as"), 10_000, `accepted\n${p.stderr()}`);
    p.proc.kill("SIGINT");
    expect(await p.proc.exited).toBe(130);
    const id = /accepted as (\S+)/.exec(p.stderr())![1];
    expect(p.stderr()).toContain(`interrupted; task ${id} keeps running`);
  });

  test("on a terminal, stderr gets a redrawn progress bar and stdout still only the result", async () => {
    // `script` gives the CLI a pseudo-terminal; its output is stdout and stderr together.
    const cmd = `${process.execPath} run cli.ts submit countdown --args '{"steps": 4, "interval_ms": 100}' --url ${stack.server.http}`;
    const r = await run(["script", "-qec", cmd, "/dev/null"], { env: { COLUMNS: "100" } });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("\r\x1b[2K");
    expect(r.stdout).toMatch(/countdown \[#+-*\]\s+\d+% \d\/4/);
    expect(r.stdout).toMatch(/\r\x1b\[2K"done"\r?\n/);
  });
});

describe("status, cancel, workers, queues", () => {
  test("status prints the task as JSON; --wait follows it and exits 0; an unknown id exits 4", async () => {
    const sub = await cli(["submit", "countdown", "--args", '{"steps": 2, "interval_ms": 200}', "--detach"], url);
    const { id } = JSON.parse(sub.stdout);
    const now = await cli(["status", id], url);
    expect(now.code).toBe(0);
    expect(JSON.parse(now.stdout)).toMatchObject({ id, task: "countdown" });
    const waited = await cli(["status", id, "--wait"], url);
    expect(waited.code).toBe(0);
    expect(JSON.parse(waited.stdout)).toMatchObject({ id, state: "succeeded", result: "done" });
    const missing = await cli(["status", "01a21381-0000-7000-8000-000000000000"], url);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toContain("not_found");
  });

  test("cancel stops a running task; status --wait then exits 1", async () => {
    const sub = await cli(["submit", "countdown", "--args", '{"steps": 100, "interval_ms": 200}', "--detach"], url);
    const { id } = JSON.parse(sub.stdout);
    const c = await cli(["cancel", id], url);
    expect(c.code).toBe(0);
    expect(JSON.parse(c.stdout).id).toBe(id);
    const waited = await cli(["status", id, "--wait"], url);
    expect(waited.code).toBe(1);
    expect(JSON.parse(waited.stdout).state).toBe("cancelled");
  });

  test("workers lists the live worker, as a table and as JSON", async () => {
    const json = await cli(["workers", "--json"], url);
    expect(json.code).toBe(0);
    const list = JSON.parse(json.stdout) as { pid: number; concurrency: number }[];
    expect(list.map((w) => w.pid)).toEqual([stack.workers[0]!.pid]);
    const tableOut = await cli(["workers"], url);
    expect(tableOut.stdout.split("\n")[0]).toMatch(/^ID\s+HOST\s+PID\s+RUNNING/);
    expect(tableOut.stdout).toContain(String(stack.workers[0]!.pid));
  });

  test("queues shows tasks waiting where no worker serves, and the fleet where one does", async () => {
    const env = { TASKWIRE_URL: locked.http, TASKWIRE_TOKEN: TOKEN };
    const before = JSON.parse((await cli(["queues", "--json"], env)).stdout);
    for (let i = 0; i < 2; i++) await cli(["submit", "test_task", "--args", `{"task_id": ${i}}`, "--detach"], env);
    const after = await cli(["queues", "--json"], env);
    expect(after.code).toBe(0);
    const doc = JSON.parse(after.stdout);
    expect(doc.queues[0]).toMatchObject({ name: "default", queued: before.queues[0].queued + 2, running: 0 });
    expect(doc.workers).toBe(0);
    const served = await cli(["queues"], url);
    expect(served.stdout).toMatch(/^QUEUE\s+QUEUED\s+DELAYED\s+RUNNING\s+DEAD\s+WORKERS\s+SLOTS\ndefault\s+\d+\s+\d+\s+\d+\s+\d+\s+1\s+64\n$/);
  });
});

describe("progress rendering", () => {
  test("a bar for {step, of}, {done, total} and {percent}; JSON for anything else", () => {
    expect(bar({ step: 3, of: 4 }, 80, "countdown")).toBe(`countdown [${"#".repeat(30)}${"-".repeat(10)}]  75% 3/4`);
    expect(bar({ done: 1, total: 2 }, 80, "t")).toContain("  50% 1/2");
    expect(bar({ percent: 20 }, 80, "t")).toMatch(/\]  20%$/);
    expect(bar({ phase: "upload" }, 80, "t")).toBe('t {"phase":"upload"}');
    expect(bar({ step: 1, of: 2 }, 20, "a-long-task-name").length).toBeLessThan(20);
    expect(describe_({ step: 2, of: 5 })).toBe("2/5");
    expect(describe_("x".repeat(500)).length).toBe(200);
  });
});

describe("help and version", () => {
  const commands = ["start", "serve", "worker", "submit", "status", "cancel", "workers", "queues"];

  test("--help on every command: usage on stdout, exit 0", async () => {
    for (const c of commands) {
      const r = await cli([c, "--help"]);
      expect(r.code).toBe(0);
      expect(r.stdout).toStartWith(`Usage: taskwire ${c}`);
      expect(r.stdout).toContain("Exit:");
    }
    const top = await cli(["--help"]);
    expect(top.code).toBe(0);
    for (const c of commands) expect(top.stdout).toContain(`  ${c} `);
    expect(top.stdout).toContain("Exit codes: 0 ok, 1 task failed");
  });

  test("no command prints the usage on stderr and exits 2", async () => {
    const r = await cli([]);
    expect(r.code).toBe(2);
    expect(r.stderr).toStartWith("Usage: taskwire <command>");
  });

  test("--version prints package.json's version and the git commit", async () => {
    const head = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: ROOT }).stdout.toString().trim();
    const r = await cli(["--version"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toStartWith(`taskwire ${pkg.version} (commit ${head}`);
  });

  test("serve and worker refuse flags they do not take, naming them", async () => {
    const r = await cli(["worker", "--port", "9"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--port is not a flag of `taskwire worker`");
    const p = await cli(["serve", "--port", "http"]);
    expect(p.code).toBe(2);
    expect(p.stderr).toContain("--port");
  });
});

/** `taskwire <args>` from the source tree, left running. */
function spawnCli(args: string[]) {
  return spawnKept([process.execPath, "run", "cli.ts", ...args]);
}

async function queued(http: string): Promise<number> {
  const doc = (await (await fetch(`${http}/queues`)).json()) as { queues: { queued: number; running: number }[] };
  return doc.queues[0]!.queued + doc.queues[0]!.running;
}
