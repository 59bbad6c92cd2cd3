/**
 * GET /client.js: the typed SDK (client/index.ts) bundled for browsers by Bun.build on first request and
 * kept in memory, so a page can `import { connect } from "/client.js"` with no build step of its own.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { RequestContext } from "../lib/router.ts";

const ENTRY = join(import.meta.dir, "..", "client", "index.ts");

let built: Promise<{ js: string; etag: string }> | undefined;

async function build(): Promise<{ js: string; etag: string }> {
  const out = await Bun.build({ entrypoints: [ENTRY], target: "browser", format: "esm", minify: { syntax: true, whitespace: true } });
  if (!out.success || !out.outputs[0]) throw new Error(`client/index.ts did not build: ${out.logs.map(String).join("; ")}`);
  const js = await out.outputs[0].text();
  return { js, etag: `"${Bun.hash(js).toString(36)}"` };
}

export async function fetch(req: Request, { app, rest }: RequestContext): Promise<Response> {
  if (rest !== "" || (req.method !== "GET" && req.method !== "HEAD")) return Response.json({ error: { code: "not_found", message: "GET /client.js" } }, { status: 404 });
  if (!existsSync(ENTRY)) {
    // A compiled binary carries no client/ sources: say so instead of failing obscurely.
    return Response.json({ error: { code: "not_found", message: "this build has no client/ sources to bundle; run the server from the source tree" } }, { status: 404 });
  }
  built ??= build();
  let res: { js: string; etag: string };
  try {
    res = await built;
  } catch (err) {
    built = undefined; // try again next request (the source may be mid-edit)
    app.log.error("GET /client.js", err);
    return Response.json({ error: { code: "internal", message: "client/index.ts did not build; see the server log" } }, { status: 500 });
  }
  const headers = { "content-type": "text/javascript; charset=utf-8", etag: res.etag, "cache-control": "no-cache" };
  if (req.headers.get("if-none-match") === res.etag) return new Response(null, { status: 304, headers });
  return new Response(req.method === "HEAD" ? null : res.js, { headers });
}
