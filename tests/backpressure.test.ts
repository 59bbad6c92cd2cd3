/**
 * Slow readers (README "Security", PROTOCOL.md section 2): a /ws client that stops reading while
 * countdowns stream gets its progress coalesced, every terminal event, and costs the server bounded
 * memory; one stuck past SLOW_CLIENT_CLOSE_MS is closed with 1013; other clients are not slowed.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { type ServerProc, startServer } from "./helpers/procs.ts";
import { type RawSocket, rawWebSocket } from "./helpers/rawws.ts";
import { type Stack, startStack } from "./helpers/stack.ts";
import { metric, waitFor } from "./helpers/util.ts";
import { openSocket } from "./helpers/ws.ts";

const HIGH_WATER = 64 * 1024;
/** Loopback kernel buffers take a few MiB before Bun buffers anything: send well past that. */
const TASKS = 12;
const STEPS = 10_000;

let stack: Stack;
/** Same Redis, SLOW_CLIENT_CLOSE_MS=1000. */
let strict: ServerProc;

beforeAll(async () => {
  stack = await startStack("backpressure", { workers: 1, env: { SEND_HIGH_WATER_BYTES: String(HIGH_WATER), SLOW_CLIENT_CLOSE_MS: "60000" } });
  strict = await startServer({ ...stack.env, SLOW_CLIENT_CLOSE_MS: "1000" });
});
afterAll(async () => {
  await strict?.kill("SIGKILL");
  await stack?.stop();
});

function rssBytes(pid: number): number {
  const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Number(kb) * 1024;
}

const doneCountdowns = (base: string) => metric(base, 'taskwire_tasks_succeeded_total{task="countdown"}');

function submitCountdowns(raw: RawSocket, n: number, prefix: string): void {
  for (let i = 0; i < n; i++) raw.sendText({ type: "submit", ref: `${prefix}${i}`, task: "countdown", args: { steps: STEPS } });
}

test("a client that stops reading: progress coalesced, every terminal event delivered, memory bounded, others on time", async () => {
  const base = stack.server.http;
  const pid = stack.server.pid;
  const rss0 = rssBytes(pid);
  const done0 = await doneCountdowns(base);
  const coalesced0 = await metric(base, "taskwire_progress_coalesced_total");

  const raw = await rawWebSocket(stack.server.port, "/ws");
  raw.pause();
  submitCountdowns(raw, TASKS, "c");

  // A well-behaved client on the same server while the stream is stuck behind the paused one.
  const polite = await openSocket(`${stack.server.ws}/ws`);
  let rssPeak = rss0;
  let bufferedPeak = 0;
  const t0 = performance.now();
  let politeDeliveryMs = 0;
  // The worker is busy with the countdowns, so a task may wait there; what the server owes the polite
  // client is prompt delivery: from the result being stored (finished_at) to the frame arriving.
  const politeRun = (async () => {
    await Bun.sleep(300); // let the slow socket congest first
    for (let i = 0; i < 5; i++) {
      polite.send({ type: "submit", ref: `t${i}`, task: "test_task", args: { task_id: i } });
      const got = await polite.until((f) => f.type === "result", 20_000);
      const arrived = Date.now();
      expect(got.map((f) => f.type)).toEqual(["accepted", "result"]);
      const info = (await (await fetch(`${base}/tasks/${got[0].id}`)).json()) as { finished_at: number };
      politeDeliveryMs = Math.max(politeDeliveryMs, arrived - info.finished_at);
    }
    polite.send({ type: "submit", ref: "p", task: "countdown", args: { steps: 20 } });
    return polite.until((f) => f.type === "result", 20_000);
  })();

  await waitFor(async () => {
    rssPeak = Math.max(rssPeak, rssBytes(pid));
    bufferedPeak = Math.max(bufferedPeak, await metric(base, "taskwire_send_buffered_bytes_max"));
    return (await doneCountdowns(base)) >= done0 + TASKS + 1;
  }, 60_000, "all countdowns to finish");
  const streamMs = performance.now() - t0;

  const politeFrames = await politeRun;
  expect(politeFrames[0]).toMatchObject({ type: "accepted", ref: "p" });
  // Reading promptly, it gets every event: coalescing is per socket.
  expect(politeFrames.slice(1).map((f) => f.seq)).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
  expect(politeDeliveryMs).toBeLessThan(1_000);

  // What the server holds for the stuck socket stays near the high-water mark (a few frames and the terminals over it).
  expect(bufferedPeak).toBeGreaterThan(0);
  expect(bufferedPeak).toBeLessThan(HIGH_WATER + 64 * 1024);
  expect(rssPeak - rss0).toBeLessThan(96 * 1024 * 1024);

  // Reading again: per task, accepted first, increasing seqs, and the result exactly once at the end.
  raw.resume();
  await waitFor(() => raw.texts().filter((t) => t.includes('"type":"result"')).length >= TASKS, 30_000, "every result frame");
  const frames = raw.texts().map((t) => JSON.parse(t));
  const byId = new Map<string, any[]>();
  const accepted = frames.filter((f) => f.type === "accepted");
  expect(accepted.length).toBe(TASKS);
  for (const a of accepted) byId.set(a.id, []);
  for (const f of frames) if (f.type !== "accepted") byId.get(f.id)!.push(f);
  let delivered = 0;
  for (const [id, events] of byId) {
    const seqs = events.map((e) => e.seq);
    for (let i = 1; i < seqs.length; i++) expect([id, seqs[i]! > seqs[i - 1]!]).toEqual([id, true]);
    expect(events.at(-1)).toMatchObject({ type: "result", seq: STEPS + 1, result: "done" });
    expect(events.filter((e) => e.type !== "progress").length).toBe(1);
    for (const e of events.slice(0, -1)) expect(e.data).toEqual({ step: e.seq, of: STEPS });
    delivered += events.length - 1;
  }
  expect(delivered).toBeLessThan(TASKS * STEPS); // gaps: coalesced progress
  // The socket was never closed and still serves.
  expect(raw.closeCode()).toBeUndefined();
  raw.sendText({ type: "submit", ref: "again", task: "test_task", args: { task_id: "again" } });
  await waitFor(() => raw.texts().some((t) => t.includes('"result":"again"')), 10_000, "a task after catching up");
  raw.destroy();
  polite.close();
  console.log(`backpressure: ${TASKS}x${STEPS} progress in ${streamMs.toFixed(0)} ms, paused reader got ${delivered}, ` +
    `server buffered peak ${bufferedPeak} B, rss +${((rssPeak - rss0) / 1048576).toFixed(1)} MiB, polite client's slowest result delivery ${politeDeliveryMs} ms`);
}, 120_000);

test("a client stuck past SLOW_CLIENT_CLOSE_MS is closed with 1013; its tasks run on and their events are kept", async () => {
  const raw = await rawWebSocket(strict.port, "/ws");
  raw.pause();
  submitCountdowns(raw, 8, "s");
  await waitFor(async () => (await metric(strict.http, "taskwire_sockets")) === 0, 30_000, "the stuck socket to be closed");
  raw.resume();
  await waitFor(() => raw.ended(), 15_000, "the connection to end");
  expect(raw.closeCode()).toBe(1013);
  // Another socket can fetch a stuck socket's task from the stored log.
  const first = raw.texts().map((t) => JSON.parse(t)).find((f) => f.type === "accepted");
  const watcher = await openSocket(`${strict.ws}/ws`);
  watcher.send({ type: "subscribe", id: first.id, after: STEPS - 2 });
  const tail = await watcher.until((f) => f.type === "result", 30_000);
  expect(tail.map((f) => f.seq)).toEqual([STEPS - 1, STEPS, STEPS + 1]);
  watcher.close();
}, 90_000);

// One SSE stream carries at most one countdown (10,000 events, ~1.3 MB), which the kernel's socket buffers
// (~4 MB on loopback) absorb before the stream itself backs up; the coalescing of a backed-up stream is
// tested on a real stream in tests/outbox.test.ts. Here: paused readers cost the server nothing and lose nothing.
test("SSE readers that stop reading: the server's memory stays bounded, and on resuming each gets its events in order and its result", async () => {
  const { connect } = await import("node:net");
  const base = stack.server.http;
  const rss0 = rssBytes(stack.server.pid);
  const STREAMS = 6;
  const ids: string[] = [];
  for (let i = 0; i < STREAMS; i++) {
    const res = await fetch(`${base}/tasks`, { method: "POST", body: JSON.stringify({ task: "countdown", args: { steps: STEPS } }) });
    ids.push(((await res.json()) as { id: string }).id);
  }
  const readers = ids.map((id) => {
    let text = "";
    const sock = connect({ host: "127.0.0.1", port: stack.server.port });
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => (text += d));
    sock.write(`GET /tasks/${id}/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`);
    sock.pause();
    return { id, sock, text: () => text };
  });
  let rssPeak = rss0;
  await waitFor(async () => {
    rssPeak = Math.max(rssPeak, rssBytes(stack.server.pid));
    const states = await Promise.all(ids.map((id) => fetch(`${base}/tasks/${id}`).then((r) => r.json() as Promise<{ state: string }>)));
    return states.every((s) => s.state === "succeeded");
  }, 60_000, "the countdowns to finish");
  expect(rssPeak - rss0).toBeLessThan(96 * 1024 * 1024);

  for (const r of readers) r.sock.resume();
  await waitFor(() => readers.every((r) => r.text().includes('"type":"result"')), 30_000, "every stream's result");
  for (const r of readers) {
    const seqs = [...r.text().matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]! > seqs[i - 1]!).toBe(true);
    expect(seqs.at(-1)).toBe(STEPS + 1);
    r.sock.destroy();
  }
}, 120_000);
