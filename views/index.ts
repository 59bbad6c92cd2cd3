/**
 * GET /: the dashboard, one self-contained page (public/index.html with its CSS and JS inlined, so a
 * ?token= page needs no second authenticated request), and GET /favicon.ico|svg. The files are text
 * imports, so a compiled binary carries them. Any other path no view serves is a 404 JSON error.
 */
import css from "../public/dashboard.css" with { type: "text" };
import js from "../public/dashboard.js" with { type: "text" };
import favicon from "../public/favicon.svg" with { type: "text" };
import page401 from "../public/401.html" with { type: "text" };
import page from "../public/index.html" with { type: "text" };
import { type RequestContext, notFound } from "../lib/router.ts";

// Bun's types call an .html import an HTMLBundle; with { type: "text" } it is the file's text.
const ICON = `data:image/svg+xml,${encodeURIComponent(favicon)}`;
const HTML = String(page)
  .replace("<!--favicon-->", () => `<link rel="icon" href="${ICON}">`)
  .replace("<!--style-->", () => `<style>\n${css}</style>`)
  .replace("<!--script-->", () => `<script type="module">\n${js}</script>`);
const UNAUTHORIZED = String(page401).replace("<!--favicon-->", () => `<link rel="icon" href="${ICON}">`);

function asset(req: Request, body: string, type: string): Response {
  const etag = `"${Bun.hash(body).toString(36)}"`;
  const headers = { "content-type": type, etag, "cache-control": "no-cache" };
  if (req.headers.get("if-none-match") === etag) return new Response(null, { status: 304, headers });
  return new Response(req.method === "HEAD" ? null : body, { headers });
}

export function fetch(req: Request, { rest }: RequestContext): Response {
  if (req.method !== "GET" && req.method !== "HEAD") return notFound();
  if (rest === "") return asset(req, HTML, "text/html; charset=utf-8");
  if (rest === "favicon.ico" || rest === "favicon.svg") return asset(req, favicon, "image/svg+xml");
  return notFound(`no route /${rest.slice(0, 100)}; the dashboard is at /`);
}

/** A browser opening the dashboard without the token gets a page saying how to pass it, not raw JSON. */
export function unauthorized(req: Request, rest: string): Response | undefined {
  if (rest !== "" || !req.headers.get("accept")?.includes("text/html")) return undefined;
  return new Response(UNAUTHORIZED, { status: 401, headers: { "content-type": "text/html; charset=utf-8", "www-authenticate": 'Bearer realm="taskwire"' } });
}
