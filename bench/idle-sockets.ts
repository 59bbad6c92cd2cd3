/**
 * Holds idle /ws sockets for the connections workload, in a process of its own: the probe that times tasks
 * meanwhile must not share a heap and an event loop with 20,000 sockets, as no real client would.
 * Protocol with its parent (bench/load.ts): one JSON line on stdout once all are open (HeldSockets), then,
 * when stdin ends, it closes them and prints one more ({ closes }: sockets that ended before that), and exits.
 */
import { parseArgs } from "node:util";
import { connectRaw, type RawWs } from "./rawws.ts";

export interface HeldSockets {
  opened: number;
  failed: number;
  firstError: string;
  openSeconds: number;
  sources: number;
}

/** Opens `count` sockets in bounded batches (so the server's accept queue never overflows), from `sources` addresses. */
async function openIdle(url: string, count: number, sources: number, progress: (line: string) => void): Promise<{ socks: RawWs[]; held: HeldSockets; closes: () => number }> {
  const u = new URL(url);
  const t0 = performance.now();
  const socks: RawWs[] = [];
  let closes = 0;
  let failed = 0;
  let firstError = "";
  const batch = 250;
  for (let i = 0; i < count; i += batch) {
    const part = await Promise.allSettled(Array.from({ length: Math.min(batch, count - i) }, (_, j) => connectRaw({
      host: u.hostname, port: Number(u.port), path: "/ws",
      localAddress: `127.0.0.${1 + ((i + j) % sources)}`,
      onClose: () => closes++,
    })));
    for (const p of part) {
      if (p.status === "fulfilled") socks.push(p.value);
      else {
        failed++;
        firstError ||= String(p.reason);
      }
    }
    if ((i / batch) % 20 === 19) progress(`${socks.length} sockets open`);
  }
  const held = { opened: socks.length, failed, firstError, openSeconds: (performance.now() - t0) / 1000, sources };
  return { socks, held, closes: () => closes };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { url: { type: "string" }, sockets: { type: "string" }, sources: { type: "string" }, quiet: { type: "boolean", default: false } },
  });
  const count = Number(values.sockets);
  const sources = Number(values.sources);
  if (!values.url || !(count >= 1) || !(sources >= 1 && sources <= 254)) {
    console.error("Usage: bun run bench/idle-sockets.ts --url http://127.0.0.1:8000 --sockets K --sources 1..254 [--quiet]");
    process.exit(2);
  }
  const { socks, held, closes } = await openIdle(values.url, count, sources, (line) => values.quiet || process.stderr.write(`  ${line}\n`));
  console.log(JSON.stringify(held));
  for await (const _ of Bun.stdin.stream()) {
    // Nothing to read: the parent ends stdin when it is done with the sockets.
  }
  const before = closes();
  for (const s of socks) s.close();
  console.log(JSON.stringify({ closes: before }));
  await Bun.sleep(200); // the close frames leave before the process does
  process.exit(0);
}
