/**
 * Client-side CPU per Redis command, ioredis against Bun's built-in RedisClient, on a private redis-server:
 * the cost every hot-path script call pays in the server and worker. Run on demand:
 *   bun run bench/redis-client.ts [--commands 20000]
 */
import { parseArgs } from "node:util";
import Redis from "ioredis";
import { startRedis } from "../tests/helpers/redis.ts";

const LUA = `redis.call("HSET", KEYS[1], "v", ARGV[1]) return 1`;

interface Client {
  name: string;
  evalsha(sha: string, key: string, v: string): Promise<unknown>;
  close(): void;
}

async function measure(c: Client, sha: string, n: number, inflight: number): Promise<{ usPerCmd: number; wallUsPerCmd: number }> {
  let next = 0;
  const lane = async () => {
    while (next < n) {
      const i = next++;
      await c.evalsha(sha, `bench:k:${i % 100}`, String(i));
    }
  };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inflight }, lane));
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { usPerCmd: (cpu.user + cpu.system) / n, wallUsPerCmd: (wall * 1000) / n };
}

const { values } = parseArgs({ args: process.argv.slice(2), options: { commands: { type: "string", default: "20000" } } });
const n = Number(values.commands);
if (!Number.isInteger(n) || n < 100 || n > 10_000_000) {
  console.error(`--commands: expected an integer from 100 to 10000000; got ${JSON.stringify(values.commands)}`);
  process.exit(2);
}
const redis = await startRedis();
try {
  const io = new Redis(redis.url);
  const sha = (await io.script("LOAD", LUA)) as string;
  const bun = new Bun.RedisClient(redis.url, { enableAutoPipelining: false });
  await bun.connect();
  const clients: Client[] = [
    { name: "ioredis", evalsha: (s, k, v) => io.evalsha(s, 1, k, v), close: () => io.disconnect() },
    { name: "Bun.RedisClient", evalsha: (s, k, v) => bun.send("EVALSHA", [s, "1", k, v]), close: () => bun.close() },
  ];
  console.log(`| client | in flight | client CPU µs/command | wall µs/command |\n| --- | --- | --- | --- |`);
  for (const inflight of [1, 16]) {
    for (const c of clients) {
      await measure(c, sha, Math.min(n, 2_000), inflight); // warm-up
      const r = await measure(c, sha, n, inflight);
      console.log(`| ${c.name} | ${inflight} | ${r.usPerCmd.toFixed(1)} | ${r.wallUsPerCmd.toFixed(1)} |`);
    }
  }
  for (const c of clients) c.close();
} finally {
  await redis.stop();
}
