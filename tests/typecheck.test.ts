/** The whole tree type-checks under tsconfig.json's strict settings (tsc --noEmit): the client's inferred task types included. */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { ROOT } from "./helpers/procs.ts";

test("tsc --noEmit passes", async () => {
  const proc = Bun.spawn([process.execPath, join(ROOT, "node_modules", "typescript", "bin", "tsc"), "--noEmit", "-p", ROOT], {
    cwd: ROOT, stdout: "pipe", stderr: "pipe",
  });
  const [out, code] = await Promise.all([new Response(proc.stdout as ReadableStream<Uint8Array>).text(), proc.exited]);
  expect(out).toBe("");
  expect(code).toBe(0);
}, 120_000);
