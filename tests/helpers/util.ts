/** Small test utilities: free ports, bounded waiting, unique prefixes, the fleet counters' write window. */
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
