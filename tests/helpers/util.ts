/** Small test utilities: free ports, bounded waiting, unique prefixes, the fleet counters' write window, what a process started with. */
import { readFileSync } from "node:fs";
import { createServer } from "node:net";

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A free port whose number contains `digits`, for a test about text that carries the port (tries a bounded range). */
export async function freePortContaining(digits: string): Promise<number> {
  for (let hi = 1; hi <= 6; hi++) {
    for (let lo = 0; lo < 10; lo++) {
      const port = Number(`${hi}${digits}${lo}`);
      if (port > 65535) continue;
      const free = await new Promise<boolean>((resolve) => {
        const s = createServer();
        s.unref();
        s.on("error", () => resolve(false));
        s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
      });
      if (free) return port;
    }
  }
  throw new Error(`no free port containing ${digits}`);
}

/** One sample of the server's GET /metrics at `base` (a gauge or counter with its labels, as printed); 0 when absent. */
export async function metric(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const m = new RegExp(`^${name.replace(/[{}"]/g, "\\$&")} (\\S+)$`, "m").exec(text);
  return m ? Number(m[1]) : 0;
}

/** Polls cond every 20 ms until it holds; throws naming `what` after timeoutMs. (Tests only.) */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await Bun.sleep(20);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export function uniquePrefix(name: string): string {
  return `tw-test-${name}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Fleet counters are summed over 100 ms before they are written (lib/tally.ts): wait that out before reading them. */
export const countsSettled = () => Bun.sleep(250);

/** The command line a running process was started (or last exec'd) with, as Linux shows it. */
export function cmdlineOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
}

/** Each value Bun's allocator printed for its option `name` at a start-up, in order (MIMALLOC_VERBOSE=1): one per start. */
export function mimallocSaw(output: string, name: string): string[] {
  return [...output.matchAll(new RegExp(`option '${name}': (-?\\d+)`, "g"))].map((m) => m[1]!);
}

/** The environment a running process was started (or last exec'd) with, as Linux shows it. */
export function environOf(pid: number): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")) {
    const eq = line.indexOf("=");
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}
