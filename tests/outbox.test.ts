/** lib/outbox.ts over a real byte-sized ReadableStream (the SSE sink): coalescing past the mark, drain on pull, the stuck cut-off. */
import { expect, test } from "bun:test";
import { Outbox, streamSink } from "../lib/outbox.ts";
import type { EventEntry } from "../lib/queue.ts";

const progress = (id: string, seq: number): EventEntry => ({ seq, final: false, progress: true, frame: `{"type":"progress","id":"${id}","seq":${seq},"data":{"step":${seq}}}` });
const result = (id: string, seq: number): EventEntry => ({ seq, final: true, progress: false, frame: `{"type":"result","id":"${id}","seq":${seq},"result":"done"}` });
const sse = (e: EventEntry) => `id: ${e.seq}\ndata: ${e.frame}\n\n`;

function unreadStream(highWaterMark: number) {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let outbox!: Outbox;
  let aborted = 0;
  const stream = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
      },
      pull: () => outbox?.drain(),
    },
    new ByteLengthQueuingStrategy({ highWaterMark }),
  );
  return {
    stream,
    make(closeAfterMs: number) {
      outbox = new Outbox(streamSink(controller, () => aborted++), closeAfterMs, sse);
      return outbox;
    },
    aborted: () => aborted,
    close: () => {
      outbox.dispose();
      controller.close();
    },
  };
}

/** Reads the whole stream and returns each task's delivered seqs in order. */
async function readAll(stream: ReadableStream<Uint8Array>): Promise<Map<string, number[]>> {
  const text = await new Response(stream).text();
  const seen = new Map<string, number[]>();
  for (const m of text.matchAll(/^id: (\d+)\ndata: \{"type":"\w+","id":"(\w+)"/gm)) {
    const id = m[2]!;
    seen.set(id, [...(seen.get(id) ?? []), Number(m[1])]);
  }
  return seen;
}

test("past the high-water mark progress is coalesced per task; the final event always goes out; pull drains the latest held progress", async () => {
  const s = unreadStream(2048);
  const out = s.make(60_000);
  // More than one flush's worth (lib/outbox.ts sends a tick's frames together up to ~64 KB).
  for (let seq = 1; seq <= 2000; seq++) {
    out.event("a", progress("a", seq));
    out.event("b", progress("b", seq));
  }
  out.event("a", result("a", 2001)); // b stays mid-run: its latest progress is held for the drain
  const reading = readAll(s.stream);
  await Bun.sleep(10);
  s.close();
  const seen = await reading;
  const a = seen.get("a")!;
  const b = seen.get("b")!;
  for (const seqs of [a, b]) {
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]! > seqs[i - 1]!).toBe(true);
    expect(seqs.length).toBeLessThan(1500); // coalesced: far fewer than were sent
    expect(seqs.length).toBeGreaterThan(5); // but everything under the mark went out as it came
  }
  expect(a.at(-1)).toBe(2001);
  expect(b.at(-1)).toBe(2000); // the held latest progress, sent once the reader pulled
  expect(s.aborted()).toBe(0);
  out.dispose();
});

test("under the mark nothing is coalesced", async () => {
  const s = unreadStream(1024 * 1024);
  const out = s.make(60_000);
  for (let seq = 1; seq <= 100; seq++) out.event("a", progress("a", seq));
  out.event("a", result("a", 101));
  s.close(); // disposes first: what this tick wrote goes out before the stream ends, as in views/tasks.ts
  expect((await readAll(s.stream)).get("a")).toEqual(Array.from({ length: 101 }, (_, i) => i + 1));
  out.dispose();
});

test("a reader that stays past the mark for closeAfterMs is cut off once; one that drains in time is not", async () => {
  const stuck = unreadStream(256);
  const out = stuck.make(50);
  for (let seq = 1; seq <= 50; seq++) out.event("a", progress("a", seq));
  await Bun.sleep(150);
  expect(stuck.aborted()).toBe(1);
  out.dispose();

  const slow = unreadStream(256);
  const out2 = slow.make(200);
  for (let seq = 1; seq <= 50; seq++) out2.event("a", progress("a", seq));
  // It reads everything queued before the deadline (pull() drains what was held), then has nothing left to read.
  const reader = slow.stream.getReader();
  let reads = 0;
  while (reads < 100 && (await Promise.race([reader.read().then(() => true), Bun.sleep(20).then(() => false)]))) reads++;
  expect(reads).toBeGreaterThan(0);
  await Bun.sleep(300);
  expect(slow.aborted()).toBe(0);
  out2.dispose();
});
