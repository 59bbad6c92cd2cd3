/** PROTOCOL.md section 4: the bearer token (constant-time compare) and the browser Origin allowlist. */
import { timingSafeEqual } from "node:crypto";
import type { Config } from "./config.ts";

const enc = new TextEncoder();

export function tokenMatches(given: string | null | undefined, expected: string): boolean {
  if (!given) return false;
  const a = enc.encode(given);
  const b = enc.encode(expected);
  // Compare equal-length buffers so the time taken says nothing about where they differ.
  return timingSafeEqual(a.length === b.length ? a : b, b) && a.length === b.length;
}

export function requestToken(req: Request, url: URL): string | null {
  const h = req.headers.get("authorization");
  if (h?.startsWith("Bearer ")) return h.slice(7).trim();
  return url.searchParams.get("token");
}

function jsonError(status: number, code: string, message: string): Response {
  return Response.json({ error: { code, message } }, { status, headers: { "www-authenticate": status === 401 ? 'Bearer realm="taskwire"' : "" } });
}

/** A refusal Response, or undefined when the request may proceed. /healthz is always open. */
export function checkAccess(req: Request, url: URL, config: Config): Response | undefined {
  if (config.TASKWIRE_TOKEN && url.pathname !== "/healthz" && !tokenMatches(requestToken(req, url), config.TASKWIRE_TOKEN)) {
    return jsonError(401, "unauthorized", "missing or wrong token: send Authorization: Bearer <TASKWIRE_TOKEN>, or ?token=<TASKWIRE_TOKEN> on WebSocket and EventSource URLs");
  }
  const origin = req.headers.get("origin");
  if (config.TASKWIRE_ORIGINS && origin && req.headers.get("upgrade")?.toLowerCase() === "websocket") {
    const allowed = config.TASKWIRE_ORIGINS.split(",").map((s) => s.trim()).filter(Boolean);
    if (!allowed.includes(origin) && !allowed.includes("*")) {
      return jsonError(403, "forbidden", `origin ${origin} is not in TASKWIRE_ORIGINS`);
    }
  }
  return undefined;
}
