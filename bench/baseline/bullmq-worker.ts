/**
 * The BullMQ baseline's worker: `test_task` (returns args.task_id) as a BullMQ Worker with taskwire's
 * default concurrency (64), so `bun run bench --stack bullmq` measures the same work on BullMQ.
 */
import { Worker } from "bullmq";
import { connection, QUEUE } from "./bullmq.ts";

const worker = new Worker(QUEUE, async (job) => (job.data as { task_id: unknown }).task_id, {
  connection: connection({ maxRetriesPerRequest: null }),
  concurrency: 64, // jobs are removed once done by their own options (the server's Queue)
});
worker.on("error", (err) => console.error(`worker error: ${err.message}`));
await worker.waitUntilReady();
console.log("bullmq baseline worker: taking tasks");
const stop = () => void worker.close().then(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
