/** PROTOCOL.md section 4: the bearer token (constant-time compare) and the browser Origin allowlist. */
import { createHash, timingSafeEqual } from "node:crypto";
import type { Config } from "./config.ts";

const digest = (s: string) => createHash("sha256").update(s).digest();
let expected: { token: string; hash: Buffer } | undefined;

/**
 * Compares fixed-length digests in constant time, so neither where the strings differ nor the
 * token's length shows in the time taken.
 */
export function tokenMatches(given: string | null | undefined, token: string): boolean {
  if (!given) return false;
  if (expected?.token !== token) expected = { token, hash: digest(token) };
  return timingSafeEqual(digest(given), expected.hash);
}

/** `Authorization: Bearer <t>` (scheme case-insensitive, RFC 7235), else `?token=<t>`. */
export function requestToken(req: Request, url: URL): string | null {
  const m = /^bearer\s+(\S+)\s*$/i.exec(req.headers.get("authorization") ?? "");
  return m ? m[1]! : url.searchParams.get("token");
}

let origins: { list: string; set: Set<string> } | undefined;
function allowedOrigins(list: string): Set<string> {
  if (origins?.list !== list) {
    origins = { list, set: new Set(list.split(",").map((s) => s.trim().replace(/\/+$/, "").toLowerCase()).filter(Boolean)) };
  }
  return origins.set;
}

function refusal(status: 401 | 403, code: string, message: string): Response {
  const headers: Record<string, string> = status === 401 ? { "www-authenticate": 'Bearer realm="taskwire"' } : {};
  return Response.json({ error: { code, message } }, { status, headers });
}

/**
 * A refusal Response, or undefined when the request may proceed. Runs before routing and before any
 * upgrade, so a refused client never gets a socket. `open` is true for /healthz only.
 */
export function checkAccess(req: Request, url: URL, config: Config, open = false): Response | undefined {
  if (config.TASKWIRE_TOKEN && !open && !tokenMatches(requestToken(req, url), config.TASKWIRE_TOKEN)) {
    return refusal(401, "unauthorized", "missing or wrong token: send Authorization: Bearer <TASKWIRE_TOKEN>, or ?token=<TASKWIRE_TOKEN> on WebSocket and EventSource URLs");
  }
  // Browsers always send Origin on a WebSocket upgrade; other clients may omit it and are judged by the token.
  const origin = req.headers.get("origin");
  if (config.TASKWIRE_ORIGINS && origin !== null && req.headers.get("upgrade")?.toLowerCase() === "websocket") {
    const allowed = allowedOrigins(config.TASKWIRE_ORIGINS);
    if (!allowed.has("*") && !allowed.has(origin.toLowerCase())) {
      return refusal(403, "forbidden", `origin ${JSON.stringify(origin.slice(0, 200))} is not in TASKWIRE_ORIGINS`);
    }
  }
  return undefined;
}
