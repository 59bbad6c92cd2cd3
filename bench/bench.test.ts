/** The bench's own checks: percentiles, the raw WebSocket client, the report, and that the load generator catches a misbehaving server. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startServer, startWorker } from "../tests/helpers/procs.ts";
import { cli, startRedis, type TestRedis } from "../tests/helpers/redis.ts";
import { startStack, type Stack } from "../tests/helpers/stack.ts";
import { parseOptions, runMode } from "./load.ts";
import { encode, parseReply } from "./baseline/resp.ts";
import { connectRaw } from "./rawws.ts";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parsePerfCsv, perfUnavailable } from "./perf.ts";
import { floorRatios, floorTable, markdownTable, perfTable, svgChart } from "./report.ts";
import { median, Samples } from "./stats.ts";

describe("stats", () => {
  test("nearest-rank percentiles over every sample", () => {
    const s = new Samples();
    for (let i = 100; i >= 1; i--) s.add(i); // added out of order on purpose
    const p = s.percentiles();
    expect(p).toMatchObject({ count: 100, p50: 50, p90: 90, p99: 99, p999: 100, max: 100, mean: 50.5 });
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
  });

  test("grows past its first buffer", () => {
    const s = new Samples();
    for (let i = 0; i < 200_000; i++) s.add(i % 10);
    expect(s.count).toBe(200_000);
    expect(s.percentiles().max).toBe(9);
  });
});

describe("raw WebSocket client", () => {
  test("handshake, text both ways, ping answered, close code, chosen source address", async () => {
    let remote = "";
    let pongs = 0;
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(req, srv) {
        remote = srv.requestIP(req)?.address ?? "";
        return srv.upgrade(req) ? undefined : new Response("no", { status: 400 });
      },
      websocket: {
        message(ws, msg) {
          ws.ping("p");
          ws.send(`echo:${msg}`);
          if (msg === "bye") ws.close(4001, "done");
        },
        pong() {
          pongs++;
        },
      },
    });
    try {
      const got: string[] = [];
      let closed = 0;
      const ws = await connectRaw({
        host: "127.0.0.1", port: server.port!, path: "/", localAddress: "127.0.0.3",
        onText: (t) => got.push(t), onClose: (c) => (closed = c),
      });
      const big = "é".repeat(70_000); // a 64-bit length frame, multi-byte UTF-8
      ws.send("hi");
      // The server ignores frames once it has started closing, so wait for this pong before "bye".
      for (let i = 0; i < 200 && pongs === 0; i++) await Bun.sleep(5);
      ws.send(big);
      ws.send("bye");
      for (let i = 0; i < 200 && closed === 0; i++) await Bun.sleep(10);
      expect(remote).toBe("127.0.0.3");
      expect(got).toEqual(["echo:hi", `echo:${big}`, "echo:bye"]);
      expect(closed).toBe(4001);
      expect(pongs).toBeGreaterThan(0);
    } finally {
      server.stop(true);
    }
  });

  test("a refused upgrade rejects", async () => {
    const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("nope", { status: 404 }) });
    try {
      await expect(connectRaw({ host: "127.0.0.1", port: server.port!, path: "/ws" })).rejects.toThrow(/upgrade refused: HTTP\/1.1 404/);
    } finally {
      server.stop(true);
    }
  });
});

describe("load generator verification", () => {
  test("counts duplicates, wrong values and missing results from a server that breaks the protocol", async () => {
    // A deliberately wrong /ws peer: every 4th task's result twice, every 4th+1 wrong, every 4th+2 never.
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (req, srv) => (srv.upgrade(req) ? undefined : new Response("no", { status: 400 })),
      websocket: {
        message(ws, msg) {
          const f = JSON.parse(String(msg));
          const n = Number(String(f.ref).split(".")[1]);
          const id = `t-${f.ref}`;
          ws.send(JSON.stringify({ type: "accepted", ref: f.ref, id }));
          const result = (value: unknown) => ws.send(JSON.stringify({ type: "result", id, seq: 1, result: value }));
          if (n % 4 === 2) return;
          result(n % 4 === 1 ? "wrong" : f.args.task_id);
          if (n % 4 === 0) result(f.args.task_id);
        },
      },
    });
    try {
      const { mode, options } = parseOptions(["ws-closed", "--url", `http://127.0.0.1:${server.port}`, "--seconds", "0.3", "--warmup", "0", "--sockets", "2", "--inflight", "4", "--drain-ms", "300", "--quiet"]);
      const r = await runMode(mode, options);
      expect(r.ok).toBe(false);
      expect(r.violations.duplicates).toBeGreaterThan(0);
      expect(r.violations.wrongValue).toBeGreaterThan(0);
      expect(r.violations.missing).toBeGreaterThan(0);
    } finally {
      server.stop(true);
    }
  });

  describe("against a real stack", () => {
    let stack: Stack;
    beforeAll(async () => {
      stack = await startStack("bench");
    });
    afterAll(async () => {
      await stack?.stop();
    });

    const run = (...args: string[]) => {
      const { mode, options } = parseOptions([...args, "--url", stack.server.http, "--seconds", "0.5", "--warmup", "0", "--quiet",
        "--pids", `server=${stack.server.pid},worker=${stack.workers[0]!.pid},redis=${stack.redis.proc.pid}`]);
      return runMode(mode, options);
    };

    test("ws-closed with a 1 KB payload: every result once, right value, CPU per task measured", async () => {
      const r = await run("ws-closed", "--sockets", "3", "--inflight", "5", "--payload", "1024");
      expect(r.violations).toEqual({ duplicates: 0, wrongValue: 0, missing: 0, errors: {}, unexpected: 0, closes: 0 });
      expect(r.ok).toBe(true);
      expect(r.tasks).toBeGreaterThan(0);
      expect(r.cpuPerTaskMs).toBeGreaterThan(0);
    });

    test("ws-open and async modes verify too", async () => {
      const open = await run("ws-open", "--rate", "100", "--sockets", "2");
      expect(open.ok).toBe(true);
      expect(open.latencyFromSend!.count).toBe(open.tasks);
      const seed = await run("async", "--sockets", "3");
      expect(seed.ok).toBe(true);
      expect(seed.verified).toBeGreaterThan(0);
    });

    test("connections mode opens idle sockets from two source addresses and measures server memory", async () => {
      const r = await run("connections", "--sockets", "300", "--per-source", "150", "--rate", "50");
      expect(r.ok).toBe(true);
      expect(r.extra).toMatchObject({ idleSockets: 300, failedOpen: 0 });
      expect(r.params.sources).toBe(2);
      expect(typeof r.extra.rssGrowthMB).toBe("number");
      // The probe ran twice, before the idle sockets opened and while they were open: both verified.
      expect(r.extra.aloneP99).toBeGreaterThan(0);
      expect(r.extra.aloneP99).toBeGreaterThanOrEqual(r.extra.aloneP50 as number);
      expect(r.verified).toBeGreaterThanOrEqual(2 * r.tasks - 2);
    });
  });
});

describe("the comparison stacks (bench --stack)", () => {
  // The side-by-side figures are only worth reading if the baselines do the same job: each must pass the
  // load generator's own verification (every result once, the right value, seed frames in order).
  /**
   * Starts a baseline's server and worker on a private Redis, runs the closed loop (1 KB payloads) and
   * the seed endpoint against it, checks both verified, then hands `check` the Redis and the tasks verified.
   */
  async function verifyBaseline(name: string, check: (redis: TestRedis, verified: number) => void, extraEnv: Record<string, string> = {}): Promise<void> {
    const redis = await startRedis();
    const env = { REDIS_URL: redis.socketUrl, ...extraEnv };
    const server = await startServer(env, `bench/baseline/${name}-server.ts`);
    const worker = await startWorker(env, `bench/baseline/${name}-worker.ts`).catch(async (err) => {
      await server.kill("SIGKILL");
      throw err;
    });
    try {
      const run = (...args: string[]) => {
        const { mode, options } = parseOptions([...args, "--url", server.http, "--seconds", "0.5", "--warmup", "0", "--quiet"]);
        return runMode(mode, options);
      };
      const closed = await run("ws-closed", "--sockets", "3", "--inflight", "5", "--payload", "1024");
      expect(closed.violations).toEqual({ duplicates: 0, wrongValue: 0, missing: 0, errors: {}, unexpected: 0, closes: 0 });
      expect(closed.verified).toBeGreaterThan(0);
      const seed = await run("async", "--sockets", "3");
      expect(seed.ok).toBe(true);
      expect(seed.verified).toBeGreaterThan(0);
      check(redis, closed.verified + seed.verified);
    } finally {
      await Promise.all([server.kill("SIGKILL"), worker.kill("SIGKILL")]);
      await redis.stop();
    }
  }

  test("BullMQ + Bun.serve serves /ws and /async_task/ as the load generator checks them", () =>
    verifyBaseline("bullmq", (redis, verified) => {
      // It really ran on BullMQ: the jobs went through BullMQ's own keys in that Redis.
      expect(cli(redis, "GET", "bull:bench:id")).toMatch(/^\d+$/);
      expect(Number(cli(redis, "GET", "bull:bench:id"))).toBeGreaterThanOrEqual(verified);
    }));

  test("the relay floor carries every task through a Redis list, a worker and pub/sub", () =>
    verifyBaseline("relay", (redis, verified) => {
      // One LPUSH and one PUBLISH each (their replies are off, so only the stats show them).
      const calls = commandCalls(redis);
      expect(calls("lpush")).toBeGreaterThanOrEqual(verified);
      expect(calls("publish")).toBeGreaterThanOrEqual(verified);
    }));

  test("the stored relay floor stores each task and its outcome before answering, and loses none", () =>
    verifyBaseline("relay", (redis, verified) => {
      // Two scripts a task (store; outcome), no bare LPUSH: the queue entry rides with the stored task.
      const calls = commandCalls(redis);
      expect(calls("evalsha")).toBeGreaterThanOrEqual(2 * verified);
      expect(calls("lpush")).toBe(verified); // inside the store script (counted as a command of its own)
      // Each outcome is stored as taskwire's is: the state and result in the task, a numbered entry in its log.
      const [key] = cli(redis, "--scan", "--pattern", "relay:task:*").split("\n");
      expect(cli(redis, "HGET", key!, "state")).toBe("succeeded");
      expect(cli(redis, "LRANGE", key!.replace("relay:task:", "relay:events:"), "0", "-1")).toMatch(/^1 t /);
      expect(Number(cli(redis, "TTL", key!))).toBeGreaterThan(0);
    }, { RELAY_STORED: "1" }));

  test("the claimed relay floor claims each task (one more script, its reply awaited) before it runs", () =>
    verifyBaseline("relay", (redis, verified) => {
      const calls = commandCalls(redis);
      expect(calls("evalsha")).toBeGreaterThanOrEqual(3 * verified); // store, claim, outcome
      const [key] = cli(redis, "--scan", "--pattern", "relay:task:*").split("\n");
      expect(cli(redis, "HGET", key!, "state")).toBe("succeeded");
      expect(cli(redis, "HGET", key!, "attempts")).toBe("1");
      expect(cli(redis, "HGET", key!, "worker")).toMatch(/^relay-\d+$/);
    }, { RELAY_STORED: "1", RELAY_CLAIMED: "1" }));

  /** How often Redis ran each command (INFO commandstats), by command name. */
  function commandCalls(redis: TestRedis): (cmd: string) => number {
    const stats = cli(redis, "INFO", "commandstats");
    return (cmd) => Number(stats.match(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`))?.[1] ?? 0);
  }

  test("the echo floor answers without Redis or a worker", async () => {
    const server = await startServer({}, "bench/baseline/echo-server.ts");
    try {
      const { mode, options } = parseOptions(["ws-open", "--rate", "200", "--sockets", "2", "--url", server.http, "--seconds", "0.5", "--warmup", "0", "--quiet"]);
      const r = await runMode(mode, options);
      expect(r.ok).toBe(true);
      // tasks: results inside the measured window; verified: every result checked, drained ones too.
      expect(r.tasks).toBeGreaterThan(50);
      expect(r.verified).toBeGreaterThanOrEqual(r.tasks);
    } finally {
      await server.kill("SIGKILL");
    }
  });
});

describe("command lines", () => {
  const run = (...args: string[]) => Bun.spawnSync([process.execPath, "run", ...args], { cwd: `${import.meta.dir}/..`, stdout: "pipe", stderr: "pipe" });

  test("--help lists every workload, stack and mode; a bad flag exits 2 and points to --help", () => {
    const help = run("bench/run.ts", "--help");
    expect(help.exitCode).toBe(0);
    for (const name of ["ws-closed", "ws-open", "async-seq", "ws-64k", "connections", "taskwire", "bullmq", "echo", "relay", "relay-stored", "relay-claimed"]) {
      expect(help.stdout.toString()).toContain(`  ${name} `);
    }
    const bad = run("bench/run.ts", "--stack", "nope");
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr.toString()).toContain("--stack: expected one of taskwire, bullmq, echo, relay, relay-stored, relay-claimed");
    expect(bad.stderr.toString()).toContain("--help");
    const loadHelp = run("bench/load.ts", "--help");
    expect(loadHelp.exitCode).toBe(0);
    for (const mode of ["ws-closed", "ws-open", "async", "async-seq", "connections"]) expect(loadHelp.stdout.toString()).toContain(`  ${mode} `);
    const noMode = run("bench/load.ts", "--seconds", "1");
    expect(noMode.exitCode).toBe(2);
    expect(noMode.stderr.toString()).toContain("mode: expected one of");
    const badFloor = run("bench/run.ts", "--floor", "nope");
    expect(badFloor.exitCode).toBe(2);
    expect(badFloor.stderr.toString()).toContain("--floor: expected one of");
    const floorIdle = run("bench/run.ts", "--floor", "relay-stored", "--only", "ws-open,connections");
    expect(floorIdle.exitCode).toBe(2);
    expect(floorIdle.stderr.toString()).toContain("--floor: connections (idle sockets have no floor to compare) cannot be paired");
  });

  test("--floor follows each run with the same run on the floor stack and reports CPU per task as a multiple of it", () => {
    const out = mkdtempSync(join(tmpdir(), "taskwire-bench-floor-"));
    try {
      const r = Bun.spawnSync([process.execPath, "run", "bench/run.ts", "--only", "ws-open", "--quick", "--seconds", "1", "--settle", "0", "--runs", "2",
        "--floor", "relay-stored", "--out", out], { cwd: `${import.meta.dir}/..`, stdout: "pipe", stderr: "pipe" });
      expect(r.exitCode).toBe(0);
      const file = readdirSync(out).find((f) => f.endsWith(".json"))!;
      const json = JSON.parse(readFileSync(join(out, file), "utf8")) as { workloads: { runs: unknown[]; floorRuns: { verified: number; ok: boolean }[]; cpuVsFloor: { median: number } }[] };
      const w = json.workloads[0]!;
      expect(w.floorRuns).toHaveLength(2);
      expect(w.floorRuns.every((f) => f.ok && f.verified > 0)).toBe(true);
      expect(w.cpuVsFloor.median).toBeGreaterThan(0);
      expect(readFileSync(join(out, file.replace(".json", ".md")), "utf8")).toContain("Against the relay-stored floor");
      expect(r.stderr.toString()).toContain("relay-stored: =>");
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);
});

describe("bench/ab.ts", () => {
  const ab = (...args: string[]) => Bun.spawnSync([process.execPath, "run", "bench/ab.ts", ...args], { cwd: `${import.meta.dir}/..`, stdout: "pipe", stderr: "pipe" });

  test("runs this checkout against a commit's, both loaded at once, and gives B/A per round and their mean", () => {
    const worktrees = () => Bun.spawnSync(["git", "worktree", "list"], { cwd: `${import.meta.dir}/..` }).stdout.toString();
    const before = worktrees();
    const r = ab("--ref", "HEAD", "--env-b", "WORKER_CONCURRENCY=8", "--rounds", "2", "--seconds", "0.5", "--settle", "0", "--rate", "200", "--no-write");
    expect(r.exitCode).toBe(0);
    const err = r.stderr.toString();
    expect(err).toMatch(/B: commit [0-9a-f]+ with WORKER_CONCURRENCY=8/);
    expect(err.match(/^round \d\/2: A .* \| B .* \| B\/A \d/gm)).toHaveLength(2);
    const out = r.stdout.toString();
    expect(out).toMatch(/B\/A CPU per task: \*\*\d\.\d{3}\*\*/);
    expect(out).toContain("/ 0 runs with violations");
    expect(worktrees()).toBe(before); // B's checkout is gone again
  }, 120_000);

  test("refuses a comparison of a checkout with itself, and a workload it cannot pair", () => {
    const same = ab("--rounds", "1");
    expect(same.exitCode).toBe(2);
    expect(same.stderr.toString()).toContain("nothing differs between A and B");
    const bad = ab("--ref", "HEAD", "--workload", "connections");
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr.toString()).toContain("--workload: expected one of ws-open, ws-closed, async, async-seq");
  });
});

describe("bench/scripts.ts", () => {
  const scripts = (...args: string[]) => Bun.spawnSync([process.execPath, "run", "bench/scripts.ts", ...args], { cwd: `${import.meta.dir}/..`, stdout: "pipe", stderr: "pipe" });

  test("times each per-task script of this checkout, a commit's and the floor's, and gives B/A per phase", () => {
    const r = scripts("--ref", "HEAD", "--tasks", "300", "--rounds", "2");
    expect(r.exitCode).toBe(0);
    const rows = r.stdout.toString().split("\n").filter((l) => l.startsWith("| ") && !l.startsWith("| phase") && !l.startsWith("| ---"));
    const figure = /^\| (.+?) \| (.+?) \| ([\d.]+) \([\d.]+–[\d.]+\) \| ([\d.]+) \([\d.]+–[\d.]+\) \|/;
    const parsed = rows.map((l) => figure.exec(l)).filter((m) => m !== null);
    expect(parsed).toHaveLength(rows.length);
    const sides = (phase: string) => parsed.filter((m) => m[1] === phase).map((m) => m[2]!.replace(/[0-9a-f]{7,}/, "<sha>"));
    for (const phase of ["submit", "start", "outcome"]) expect(sides(phase)).toEqual(["this checkout", "commit <sha>", "floor"]);
    expect(sides("take and start, 64 at once")).toEqual(["this checkout", "commit <sha>"]);
    for (const m of parsed) expect(Number(m[4])).toBeGreaterThan(0); // Redis's CPU per task
    expect(rows.filter((l) => l.includes("commit ")).every((l) => /\| \d\.\d{3} ± [\d.]+ \|$/.test(l))).toBe(true);
  }, 120_000);

  test("bad flags exit 2 naming the flag", () => {
    const bad = scripts("--tasks", "0");
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr.toString()).toContain('--tasks: a whole number from 1 to 200000; got "0"');
    expect(scripts("--nope").exitCode).toBe(2);
    expect(scripts("--help").stdout.toString()).toContain("Usage: bun run bench/scripts.ts");
  });
});

describe("the relay floor's RESP codec", () => {
  test("encodes by byte length and parses a reply only once all of it has arrived", () => {
    expect(encode([["PUBLISH", "c", "é 1"], ["PING"]])).toBe("*3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$4\r\né 1\r\n*1\r\n$4\r\nPING\r\n");
    const wire = Buffer.from("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$4\r\né 1\r\n:5\r\n$-1\r\n+OK\r\n");
    for (let cut = 0; cut < 35; cut++) expect(parseReply(wire.subarray(0, cut), 0)).toBeUndefined();
    const [first, at] = parseReply(wire, 0)!;
    expect(first).toEqual(["message", "ch", "é 1"]);
    expect(parseReply(wire, at)).toEqual([5, at + 4]);
    expect(parseReply(wire, at + 4)![0]).toBeNull();
    expect(parseReply(wire, at + 9)![0]).toBe("OK");
    expect(() => parseReply(Buffer.from("-ERR nope\r\n"), 0)).toThrow("redis: ERR nope");
  });
});

describe("bench --perf", () => {
  test("reads perf stat's CSV: counts by event, rows perf could not count left out", () => {
    const csv = [
      "# started on Thu Dec  3 13:00:00 2026",
      "",
      "1234.56,msec,task-clock,5000000000,100.00,0.247,CPUs utilized",
      "3850,,context-switches,5000000000,100.00,3.118,K/sec",
      "47000,,raw_syscalls:sys_enter,5000000000,100.00,,",
      "<not supported>,,cycles,0,100.00,,",
      "<not counted>,,instructions,0,0.00,,",
    ].join("\n");
    expect(parsePerfCsv(csv)).toEqual({ "task-clock": 1234.56, "context-switches": 3850, "raw_syscalls:sys_enter": 47000 });
  });

  test("the perf table gives each workload's counts per task, and its floor's when paired", () => {
    const run = (scale: number) => ({
      mode: "ws-open" as const, params: {}, seconds: 1, tasks: 1000, throughput: 1000,
      latency: { count: 1, p50: 1, p90: 2, p99: 3, p999: 4, max: 5, mean: 1 },
      cpuMs: { server: 100, worker: 50, redis: 50 }, cpuPerTaskMs: 0.2, verified: 1000,
      violations: { duplicates: 0, wrongValue: 0, missing: 0, errors: {}, unexpected: 0, closes: 0 }, ok: true,
      extra: Object.fromEntries(["server", "worker", "redis"].flatMap((role, i) => [
        [`perf.${role}.cpuMs`, scale * (i + 1) * 0.01], [`perf.${role}.switches`, scale * 3], [`perf.${role}.syscalls`, scale * 9],
      ])),
    });
    const w = { name: "ws-open", title: "open", target: "t", runs: [run(2), run(2)], floorRuns: [run(1)] };
    const table = perfTable([w], "relay-claimed");
    expect(table.split("\n")).toHaveLength(4);
    expect(table).toContain("| open | measured | 0.120 (0.020 + 0.040 + 0.060) | 18.00 (6.00 + 6.00 + 6.00) | 54.0 (18.0 + 18.0 + 18.0) |");
    expect(table).toContain("| open | relay-claimed | 0.060 (0.010 + 0.020 + 0.030) |");
    // Runs without perf's counts give no table.
    expect(perfTable([{ ...w, runs: [{ ...run(1), extra: {} }], floorRuns: undefined }])).toBe("");
  });

  test("counts server, worker and Redis in each measured run, or says why it cannot", () => {
    const out = mkdtempSync(join(tmpdir(), "taskwire-bench-perf-"));
    try {
      const r = Bun.spawnSync([process.execPath, "run", "bench/run.ts", "--only", "ws-open", "--quick", "--seconds", "2", "--settle", "0", "--perf", "--out", out],
        { cwd: `${import.meta.dir}/..`, stdout: "pipe", stderr: "pipe" });
      const why = perfUnavailable();
      if (why) {
        // Without perf the runner refuses the flag up front, naming what to install.
        expect(r.exitCode).toBe(2);
        expect(r.stderr.toString()).toContain(`--perf: ${why}`);
        return;
      }
      expect(r.exitCode).toBe(0);
      const file = readdirSync(out).find((f) => f.endsWith(".json"))!;
      const json = JSON.parse(readFileSync(join(out, file), "utf8")) as { workloads: { runs: { extra: Record<string, number> }[] }[] };
      const extra = json.workloads[0]!.runs[0]!.extra;
      for (const role of ["server", "worker", "redis"]) {
        // Each task wakes each process at least once, costs it some CPU, and takes it a few system calls.
        expect(extra[`perf.${role}.cpuMs`]).toBeGreaterThan(0.001);
        expect(extra[`perf.${role}.cpuMs`]).toBeLessThan(50);
        expect(extra[`perf.${role}.switches`]).toBeGreaterThan(0.5);
        expect(extra[`perf.${role}.syscalls`]).toBeGreaterThan(1);
      }
      expect(readFileSync(join(out, file.replace(".json", ".md")), "utf8")).toContain("Counted by `perf stat`");
      expect(r.stderr.toString()).toContain("perf per task (server, worker, redis): CPU");
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);
});

describe("report", () => {
  test("table and chart carry every workload and escape names", () => {
    const run = (throughput: number) => ({
      mode: "ws-closed" as const, params: {}, seconds: 1, tasks: throughput, throughput,
      latency: { count: 1, p50: 1, p90: 2, p99: 3, p999: 4, max: 5, mean: 1 },
      cpuMs: { server: 10, worker: 5, redis: 5 }, cpuPerTaskMs: 20 / throughput, verified: throughput,
      violations: { duplicates: 0, wrongValue: 0, missing: 0, errors: {}, unexpected: 0, closes: 0 }, ok: true, extra: {},
    });
    const ws = [
      { name: "a<b", title: "first", target: "t", runs: [run(100), run(300), run(200)] },
      { name: "c", title: "second", target: "t", runs: [run(50)] },
    ];
    const table = markdownTable(ws);
    expect(table.split("\n")).toHaveLength(4);
    expect(table).toContain("| first (3 runs) | 200 (100–300) |");
    const svg = svgChart(ws, "caption & more");
    expect(svg).toStartWith("<svg");
    expect(svg).toContain("a&lt;b");
    expect(svg).toContain("caption &amp; more");
    expect(svg).not.toContain("NaN");
  });

  test("the floor table pairs run i with floor run i: ratios of CPU per task, median, min and max", () => {
    const run = (cpuMs: number) => ({
      mode: "ws-open" as const, params: {}, seconds: 1, tasks: 1000, throughput: 1000,
      latency: { count: 1, p50: 1, p90: 2, p99: 3, p999: 4, max: 5, mean: 1 },
      cpuMs: { server: cpuMs / 2, worker: cpuMs / 4, redis: cpuMs / 4 }, cpuPerTaskMs: cpuMs / 1000, verified: 1000,
      violations: { duplicates: 0, wrongValue: 0, missing: 0, errors: {}, unexpected: 0, closes: 0 }, ok: true, extra: {},
    });
    // The host slowed between pairs: absolute figures drift, the paired ratios do not.
    const w = { name: "ws-open", title: "open", target: "t", runs: [run(400), run(800), run(600)], floorRuns: [run(200), run(400), run(200)] };
    const ratios = floorRatios(w)!;
    expect([ratios.median, ratios.min, ratios.max].map((x) => Math.round(x * 1e6) / 1e6)).toEqual([2, 2, 3]);
    expect(floorRatios({ ...w, floorRuns: undefined })).toBeUndefined();
    const table = floorTable([w, { ...w, name: "no-floor", floorRuns: undefined }], "relay-stored");
    expect(table.split("\n")).toHaveLength(3);
    expect(table).toContain("| open (3 pairs) | 0.600 (0.300 + 0.150 + 0.150) | 0.200 (0.100 + 0.050 + 0.050) | 2.00 (2.00–3.00) |");
    // The chart's CPU panel: each process's share stacked, the floor's bar under it, the ratio beside it.
    const svg = svgChart([w], "paired");
    expect(svg).toContain("<title>worker 0.150 ms</title>");
    expect(svg).toContain("<title>worker 0.050 ms</title>");
    expect(svg).toContain("0.600 (2.00× floor)");
  });
});
