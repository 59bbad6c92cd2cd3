/**
 * GET /client.js: the typed SDK (client/index.ts) bundled for browsers, so a page can
 * `import { connect } from "/client.js"` with no build step. The bundle is made at transpile time by a
 * macro (lib/client-bundle.ts), so the compiled binary serves it too; cached by ETag.
 */
import { bundleClient } from "../lib/client-bundle.ts" with { type: "macro" };
import { type RequestContext, notFound } from "../lib/router.ts";

const JS: string = bundleClient();
const ETAG = `"${Bun.hash(JS).toString(36)}"`;
const HEADERS = { "content-type": "text/javascript; charset=utf-8", etag: ETAG, "cache-control": "no-cache" };

export function fetch(req: Request, { rest }: RequestContext): Response {
  if (rest !== "" || (req.method !== "GET" && req.method !== "HEAD")) return notFound("GET /client.js");
  if (req.headers.get("if-none-match") === ETAG) return new Response(null, { status: 304, headers: HEADERS });
  return new Response(req.method === "HEAD" ? null : JS, { headers: HEADERS });
}
