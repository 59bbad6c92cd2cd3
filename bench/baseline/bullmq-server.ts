/**
 * The BullMQ baseline's server: Bun.serve speaking the part of PROTOCOL.md the load generator uses
 * (`/ws` submit → accepted → result/failed, the `/async_task/` seed frames, `/healthz`) on top of BullMQ:
 * Queue.add per submit, one QueueEvents per process for every completion. Written the way a careful user of
 * BullMQ would (jobs removed once done, one events reader, no polling), so the comparison is fair.
 */
import { Queue, QueueEvents } from "bullmq";
import { pyDumps } from "../../lib/protocol.ts";
import { connection, QUEUE } from "./bullmq.ts";
import { serveProtocol, type Sock } from "./serve.ts";

type Outcome = { ok: true; value: unknown } | { ok: false; message: string };

const queue = new Queue(QUEUE, { connection: connection(), defaultJobOptions: { removeOnComplete: true, removeOnFail: true } });
const events = new QueueEvents(QUEUE, { connection: connection({ maxRetriesPerRequest: null }) });
await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);

/** Task id → the socket waiting for its outcome (ws.data.seed says which endpoint, so which frames). */
const waiting = new Map<string, Sock>();
// A completion can be read from the events stream before Queue.add's reply reaches us.
const early = new Map<string, Outcome>();

function deliver(id: string, out: Outcome): void {
  const ws = waiting.get(id);
  if (!ws) {
    early.set(id, out);
    if (early.size > 100_000) early.delete(early.keys().next().value!); // bounded: ids nobody here waits for
    return;
  }
  waiting.delete(id);
  if (!ws.data.seed) {
    ws.send(out.ok ? JSON.stringify({ type: "result", id, result: out.value })
      : JSON.stringify({ type: "failed", id, error: { code: "task_error", message: out.message } }));
  } else {
    ws.send(out.ok ? pyDumps({ msg: "success", flag: true, data: { result: out.value } })
      : pyDumps({ msg: `task failed: ${out.message}`, flag: false }));
    ws.close(1000);
  }
}

events.on("completed", ({ jobId, returnvalue }) => deliver(jobId, { ok: true, value: returnvalue }));
events.on("failed", ({ jobId, failedReason }) => deliver(jobId, { ok: false, message: failedReason }));

function wait(id: string, ws: Sock): void {
  const out = early.get(id);
  waiting.set(id, ws);
  if (out) {
    early.delete(id);
    deliver(id, out);
  }
}

async function submit(ws: Sock, raw: string): Promise<void> {
  let f: { type?: string; ref?: string; task?: string; args?: unknown };
  try {
    f = JSON.parse(raw);
  } catch {
    return void ws.send(JSON.stringify({ type: "error", error: { code: "bad_json", message: "not JSON" } }));
  }
  if (f.type !== "submit" || typeof f.task !== "string") {
    return void ws.send(JSON.stringify({ type: "error", ref: f.ref, error: { code: "bad_request", message: "only submit is served here" } }));
  }
  const job = await queue.add(f.task, f.args ?? {});
  ws.send(JSON.stringify({ type: "accepted", ref: f.ref, id: job.id }));
  wait(job.id!, ws);
}

async function seed(ws: Sock, raw: string): Promise<void> {
  const n = (JSON.parse(raw) as { task_id: unknown }).task_id;
  const job = await queue.add("test_task", { task_id: n });
  ws.send(pyDumps({ msg: `task ${n} is running...`, flag: true, id: job.id }));
  wait(job.id!, ws);
}

serveProtocol("bullmq baseline server", (ws, raw) => {
  const fail = (err: Error) => ws.send(JSON.stringify({ type: "error", error: { code: "unavailable", message: err.message } }));
  if (!ws.data.seed) return void submit(ws, raw).catch(fail);
  if (ws.data.started) return;
  ws.data.started = true;
  seed(ws, raw).catch(fail);
});
const stop = () => void Promise.all([queue.close(), events.close()]).then(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
