/** Auth (PROTOCOL.md section 4), the Origin allowlist, loopback binding, unguessable ids, TLS, and task names from the registry only. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { type BrowserContext, chromium } from "playwright-core";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tokenMatches } from "../lib/auth.ts";
import { loadConfig } from "../lib/config.ts";
import { isTaskId, newTaskId } from "../lib/ids.ts";
import { ROOT, type ServerProc, startServer } from "./helpers/procs.ts";
import { rawWebSocket } from "./helpers/rawws.ts";
import { type Stack, startStack } from "./helpers/stack.ts";
import { freePort } from "./helpers/util.ts";
import { openSocket } from "./helpers/ws.ts";

const TOKEN = "s3cret-token-0123456789";
const ORIGINS = "https://app.example, http://localhost:3000/";
const bearer = { authorization: `Bearer ${TOKEN}` };
const upgradeHeaders = { upgrade: "websocket", connection: "upgrade", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13" };
const someId = "0193f7c2-6d1e-7a51-9c3e-41f0d2b8a9e4";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack("security", { workers: 1, env: { TASKWIRE_TOKEN: TOKEN, TASKWIRE_ORIGINS: ORIGINS } });
});
afterAll(async () => {
  await stack?.stop();
});

async function socketCount(): Promise<number> {
  const text = await (await fetch(`${stack.server.http}/metrics`, { headers: bearer })).text();
  return Number(/^taskwire_sockets (\d+)$/m.exec(text)?.[1]);
}

/** Submits test_task on an open /ws socket and expects its result. */
async function wsRoundTrip(url: string, init?: Bun.WebSocketOptions): Promise<void> {
  const s = await openSocket(url, 5_000, init);
  s.send({ type: "submit", ref: "a", task: "test_task", args: { task_id: "hi" } });
  const frames = await s.until((f) => f.type === "result" || f.type === "error");
  expect(frames[0]).toMatchObject({ type: "accepted", ref: "a" });
  expect(frames.at(-1)).toMatchObject({ type: "result", result: "hi" });
  s.close();
  await s.closed;
}

describe("token", () => {
  test("tokenMatches: only the exact token, whatever the length", () => {
    expect(tokenMatches(TOKEN, TOKEN)).toBe(true);
    for (const bad of [null, undefined, "", TOKEN.slice(0, -1), TOKEN + "x", TOKEN.toUpperCase(), "x".repeat(10_000)]) {
      expect(tokenMatches(bad, TOKEN)).toBe(false);
    }
  });

  test("/healthz stays open without a token", async () => {
    expect((await fetch(`${stack.server.http}/healthz`)).status).toBe(200);
    expect((await fetch(`${stack.server.http}/healthz/`)).status).toBe(200);
  });

  test("every other endpoint answers 401 without the token, unknown paths included", async () => {
    const base = stack.server.http;
    const requests: [string, RequestInit?][] = [
      ["/tasks/schema"], ["/metrics"], ["/workers"], [`/tasks/${someId}`], [`/tasks/${someId}/events`], ["/nope"], ["/"],
      ["/tasks", { method: "POST", body: JSON.stringify({ task: "test_task", args: { task_id: 1 } }) }],
      [`/tasks/${someId}`, { method: "DELETE" }],
    ];
    for (const [path, init] of requests) {
      const res = await fetch(base + path, init);
      expect([path, res.status]).toEqual([path, 401]);
      expect(res.headers.get("www-authenticate")).toContain("Bearer");
      const body = (await res.json()) as any;
      expect(body.error).toMatchObject({ code: "unauthorized", message: expect.stringContaining("TASKWIRE_TOKEN") });
    }
  });

  test("a wrong token is refused, in the header or the query", async () => {
    for (const wrong of ["nope", TOKEN.slice(0, -1), TOKEN + "0", ` ${TOKEN}x`]) {
      expect((await fetch(`${stack.server.http}/tasks/schema`, { headers: { authorization: `Bearer ${wrong}` } })).status).toBe(401);
      expect((await fetch(`${stack.server.http}/tasks/schema?token=${encodeURIComponent(wrong)}`)).status).toBe(401);
    }
    expect((await fetch(`${stack.server.http}/tasks/schema`, { headers: { authorization: `Basic ${btoa(`x:${TOKEN}`)}` } })).status).toBe(401);
  });

  test("the token works as a Bearer header (any case of the scheme) and as ?token=", async () => {
    for (const headers of [bearer, { authorization: `bearer ${TOKEN}` }]) {
      expect((await fetch(`${stack.server.http}/tasks/schema`, { headers })).status).toBe(200);
    }
    expect((await fetch(`${stack.server.http}/tasks/schema?token=${TOKEN}`)).status).toBe(200);
    const post = await fetch(`${stack.server.http}/tasks?token=${TOKEN}`, { method: "POST", body: JSON.stringify({ task: "test_task", args: { task_id: 1 } }) });
    expect(post.status).toBe(202);
  });

  test("a WebSocket upgrade without the token gets HTTP 401 and no socket is ever opened", async () => {
    for (const path of ["/ws", "/async_task/", "/admin"]) {
      const res = await fetch(`${stack.server.http}${path}`, { headers: upgradeHeaders });
      expect([path, res.status]).toEqual([path, 401]);
      const wrong = await fetch(`${stack.server.http}${path}?token=wrong-token-0123456789`, { headers: upgradeHeaders });
      expect([path, wrong.status]).toEqual([path, 401]);
      await expect(rawWebSocket(stack.server.port, path)).rejects.toThrow(/401/);
      await expect(openSocket(`${stack.server.ws}${path}`, 2_000)).rejects.toThrow(/could not open/);
    }
    expect(await socketCount()).toBe(0);
  });

  test("with the token as a header or ?token=, /ws and /async_task/ serve", async () => {
    await wsRoundTrip(`${stack.server.ws}/ws`, { headers: bearer });
    await wsRoundTrip(`${stack.server.ws}/ws?token=${TOKEN}`);
    const seed = await openSocket(`${stack.server.ws}/async_task/?token=${TOKEN}`);
    seed.send({ task_id: 42 });
    expect((await seed.closed).code).toBe(1000);
    expect(seed.pending()[1]).toBe('{"msg": "success", "flag": true, "data": {"result": 42}}');
  });

  test("an EventSource-style stream authenticates with ?token=", async () => {
    const post = await fetch(`${stack.server.http}/tasks`, { method: "POST", headers: bearer, body: JSON.stringify({ task: "countdown", args: { steps: 3 } }) });
    const { id } = (await post.json()) as { id: string };
    expect((await fetch(`${stack.server.http}/tasks/${id}/events`)).status).toBe(401);
    const res = await fetch(`${stack.server.http}/tasks/${id}/events?token=${TOKEN}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const text = await Promise.race([res.text(), Bun.sleep(10_000).then(() => "timeout")]);
    expect(text).toContain('"type":"result"');
    expect(text).toContain("id: 4");
  });
});

describe("Origin allowlist (TASKWIRE_ORIGINS)", () => {
  test("a browser upgrade from another origin gets 403, even with the token", async () => {
    for (const origin of ["https://evil.example", "https://app.example.evil.com", "null", "http://app.example"]) {
      const res = await fetch(`${stack.server.http}/ws`, { headers: { ...upgradeHeaders, ...bearer, origin } });
      expect([origin, res.status]).toEqual([origin, 403]);
      expect(((await res.json()) as any).error.code).toBe("forbidden");
    }
    await expect(rawWebSocket(stack.server.port, "/ws", { ...bearer, Origin: "https://evil.example" })).rejects.toThrow(/403/);
    expect(await socketCount()).toBe(0);
  });

  test("listed origins (case and trailing slash aside) and clients that send none are served", async () => {
    await wsRoundTrip(`${stack.server.ws}/ws`, { headers: { ...bearer, origin: "https://app.example" } });
    await wsRoundTrip(`${stack.server.ws}/ws`, { headers: { ...bearer, origin: "HTTP://LOCALHOST:3000" } });
    await wsRoundTrip(`${stack.server.ws}/ws`, { headers: bearer });
  });

  test("plain HTTP is not judged by Origin (CORS is the browser's business)", async () => {
    expect((await fetch(`${stack.server.http}/tasks/schema`, { headers: { ...bearer, origin: "https://evil.example" } })).status).toBe(200);
  });
});

/** The IPv4 address a process listens on for `port`, from /proc/net/tcp (e.g. "127.0.0.1"). */
function listenAddress(port: number): string | undefined {
  for (const line of readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
    const [, local, , st] = line.trim().split(/\s+/);
    if (!local || st !== "0A") continue;
    const [hex, p] = local.split(":");
    if (parseInt(p!, 16) !== port) continue;
    return [3, 2, 1, 0].map((i) => parseInt(hex!.slice(i * 2, i * 2 + 2), 16)).join(".");
  }
  return undefined;
}

describe("binding", () => {
  test("config: HOST defaults to loopback and is marked explicit only when given", () => {
    expect(loadConfig({})).toMatchObject({ host: "127.0.0.1", hostExplicit: false });
    expect(loadConfig({ HOST: "0.0.0.0" })).toMatchObject({ host: "0.0.0.0", hostExplicit: true });
    expect(() => loadConfig({ TASKWIRE_TOKEN: "short" })).toThrow(/TASKWIRE_TOKEN.*16/);
  });

  test("config: a bad token or origin list stops start-up, and the token is never echoed", () => {
    const bad = "has a space 0123456789";
    let message = "";
    try {
      loadConfig({ TASKWIRE_TOKEN: bad });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain("TASKWIRE_TOKEN=(hidden)");
    expect(message).not.toContain(bad);
    expect(() => loadConfig({ TASKWIRE_ORIGINS: "app.example" })).toThrow(/TASKWIRE_ORIGINS.*origin like/);
    expect(loadConfig({ TASKWIRE_ORIGINS: ORIGINS }).TASKWIRE_ORIGINS).toBe(ORIGINS);
  });

  test("without a token and without HOST the server listens on 127.0.0.1 and says so; with HOST it warns", async () => {
    const noToken = { ...stack.env, TASKWIRE_TOKEN: "" };
    let quiet: ServerProc | undefined;
    let open: ServerProc | undefined;
    try {
      quiet = await startServer(noToken);
      expect(listenAddress(quiet.port)).toBe("127.0.0.1");
      expect(quiet.output()).toContain("no TASKWIRE_TOKEN: bound to loopback only");
      open = await startServer({ ...noToken, HOST: "127.0.0.1" });
      expect(open.output()).toContain("no TASKWIRE_TOKEN: every client that reaches 127.0.0.1 can submit tasks");
    } finally {
      await quiet?.kill("SIGKILL");
      await open?.kill("SIGKILL");
    }
  });
});

describe("task ids", () => {
  test("UUIDv7 with 74 random bits: every one of them varies, the rest are time, version and variant", () => {
    const n = 4_000;
    const now = Date.UTC(2026, 0, 1);
    const ids = Array.from({ length: n }, () => newTaskId(now));
    expect(new Set(ids).size).toBe(n);
    const ones = new Array<number>(128).fill(0);
    for (const id of ids) {
      expect(isTaskId(id)).toBe(true);
      const hex = id.replace(/-/g, "");
      expect(parseInt(hex.slice(0, 12), 16)).toBe(now);
      expect(hex[12]).toBe("7");
      expect("89ab").toContain(hex[16]!);
      for (let bit = 0; bit < 128; bit++) if ((parseInt(hex[bit >> 2]!, 16) >> (3 - (bit & 3))) & 1) ones[bit]!++;
    }
    // Random bits: 52..63 minus 48..51 (version) -> 12 bits after it, 66..127 after the 2 variant bits.
    const random = ones.map((c, bit) => ({ c, bit })).filter(({ bit }) => (bit >= 52 && bit < 64) || bit >= 66);
    expect(random.length).toBe(74);
    // Each random bit is 1 about half the time (n/2 = 2000, 8 sigma = 253).
    for (const { c, bit } of random) expect([bit, Math.abs(c - n / 2) < 260]).toEqual([bit, true]);
    const fixed = ones.filter((_, bit) => !(bit >= 52 && bit < 64) && bit < 66);
    for (const c of fixed) expect(c === 0 || c === n).toBe(true);
  });

  test("only well-formed ids name a task", () => {
    for (const bad of ["", "1", `${someId}x`, someId.toUpperCase(), "../../etc/passwd", "*", "taskwire:queue", { toString: () => someId }]) {
      expect(isTaskId(bad)).toBe(false);
    }
  });
});

describe("nothing from a client is evaluated; task names come from the registry", () => {
  test("Object.prototype names are unknown tasks on every endpoint", async () => {
    const s = await openSocket(`${stack.server.ws}/ws`, 5_000, { headers: bearer });
    for (const name of ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf", "__defineGetter__"]) {
      s.send({ type: "submit", ref: name, task: name, args: {} });
      expect(await s.next()).toMatchObject({ type: "error", ref: name, error: { code: "unknown_task" } });
      const http = await fetch(`${stack.server.http}/tasks`, { method: "POST", headers: bearer, body: JSON.stringify({ task: name, args: {} }) });
      expect([name, http.status]).toEqual([name, 404]);
      const seed = await openSocket(`${stack.server.ws}/async_task/?token=${TOKEN}`);
      seed.send({ task_id: 1, task: name });
      await seed.closed;
      expect(JSON.parse(seed.pending()[0]!)).toMatchObject({ flag: false, code: "unknown_task" });
    }
    s.close();
  });

  test("no eval, Function constructor, vm or computed import anywhere in the server or worker code", () => {
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(join(ROOT, dir))) {
        const rel = join(dir, name);
        if (statSync(join(ROOT, rel)).isDirectory()) walk(rel);
        else if (rel.endsWith(".ts")) files.push(rel);
      }
    };
    for (const dir of ["lib", "views", "tasks"]) walk(dir);
    files.push("server.ts", "worker.ts");
    const banned = [/\beval\s*\(/, /\bnew\s+Function\s*\(/, /\bFunction\s*\(\s*["'`]/, /from\s+["']node:vm["']/, /\bimport\s*\(\s*[^"'`\s]/, /\brequire\s*\(\s*[^"'`\s]/];
    for (const f of files) {
      const src = readFileSync(join(ROOT, f), "utf8");
      for (const re of banned) expect([f, re.test(src)]).toEqual([f, false]);
    }
    expect(files.length).toBeGreaterThan(10);
  });
});

describe("TLS (TLS_CERT_FILE / TLS_KEY_FILE)", () => {
  let dir: string;
  let cert: string;
  let tls: ServerProc | undefined;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "taskwire-tls-"));
    const gen = Bun.spawnSync(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
      "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")]);
    if (gen.exitCode !== 0) throw new Error(`openssl failed: ${gen.stderr.toString()}`);
    cert = readFileSync(join(dir, "cert.pem"), "utf8");
    tls = await startServer({ ...stack.env, TASKWIRE_TOKEN: "", TLS_CERT_FILE: join(dir, "cert.pem"), TLS_KEY_FILE: join(dir, "key.pem") });
  });
  afterAll(async () => {
    await tls?.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  test("https and a wss:// round trip with the certificate verified", async () => {
    expect(tls!.ws.startsWith("wss://")).toBe(true);
    expect(tls!.output()).toContain("listening on https://");
    expect((await fetch(`${tls!.http}/healthz`, { tls: { ca: cert } })).status).toBe(200);
    await wsRoundTrip(`${tls!.ws}/ws`, { tls: { ca: cert } });
  });

  test("a client that does not trust the certificate, or speaks plain HTTP, gets nothing", async () => {
    await expect(fetch(`${tls!.http}/healthz`)).rejects.toThrow();
    const plain = await fetch(`http://127.0.0.1:${tls!.port}/healthz`).then((r) => r.status, () => "refused");
    expect(plain).not.toBe(200);
  });

  test("setting only one of the two files is a configuration error", () => {
    expect(() => loadConfig({ TLS_CERT_FILE: "/x.pem" })).toThrow(/TLS_CERT_FILE and TLS_KEY_FILE/);
  });
});

describe("in a real browser (headless Chromium)", () => {
  let browser: BrowserContext | undefined;
  let profile: string;
  /** Lists exactly its own origin in TASKWIRE_ORIGINS. */
  let own: ServerProc | undefined;
  beforeAll(async () => {
    const port = await freePort();
    own = await startServer({ ...stack.env, PORT: String(port), TASKWIRE_ORIGINS: `http://127.0.0.1:${port}` });
    profile = mkdtempSync(join(tmpdir(), "taskwire-chromium-"));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: "/usr/bin/chromium",
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await own?.kill("SIGKILL");
  });

  test("WebSocket and EventSource authenticate with ?token=; without it, or from an origin not listed, the socket fails", async () => {
    const page = await browser!.newPage();
    await page.goto(`${own!.http}/healthz`); // an open page on the server's own origin
    const got = await page.evaluate(async ({ token, otherPort }) => {
      const submit = (url: string) => new Promise<unknown>((resolve) => {
        const ws = new WebSocket(url);
        ws.onopen = () => ws.send(JSON.stringify({ type: "submit", ref: "b", task: "test_task", args: { task_id: "from-browser" } }));
        ws.onmessage = (e) => {
          const f = JSON.parse(e.data);
          if (f.type === "result") (ws.close(), resolve(f.result));
        };
        ws.onerror = () => resolve("refused");
      });
      const post = await fetch(`/tasks?token=${token}`, { method: "POST", body: JSON.stringify({ task: "countdown", args: { steps: 2 } }) });
      const { id } = await post.json();
      const sse = await new Promise<unknown>((resolve) => {
        const es = new EventSource(`/tasks/${id}/events?token=${token}`);
        const seqs: number[] = [];
        es.onmessage = (e) => {
          const f = JSON.parse(e.data);
          seqs.push(f.seq);
          if (f.type === "result") (es.close(), resolve(seqs));
        };
        es.onerror = () => (es.close(), resolve("refused"));
      });
      const noTokenSse = await new Promise<unknown>((resolve) => {
        const es = new EventSource(`/tasks/${id}/events`);
        es.onmessage = () => (es.close(), resolve("delivered"));
        es.onerror = () => (es.close(), resolve("refused"));
      });
      return {
        withToken: await submit(`ws://${location.host}/ws?token=${token}`),
        withoutToken: await submit(`ws://${location.host}/ws`),
        otherOrigin: await submit(`ws://127.0.0.1:${otherPort}/ws?token=${token}`),
        sse, noTokenSse,
      };
    }, { token: TOKEN, otherPort: stack.server.port });
    expect(got).toEqual({ withToken: "from-browser", withoutToken: "refused", otherOrigin: "refused", sse: [1, 2, 3], noTokenSse: "refused" });
    await page.close();
  }, 30_000);
});
