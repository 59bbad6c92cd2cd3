/** Every configurable limit (README "Security"), set small in this file's own stack, and the code or close each gives when hit. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type ServerProc, startServer } from "./helpers/procs.ts";
import { OP, rawWebSocket } from "./helpers/rawws.ts";
import { type Stack, startStack } from "./helpers/stack.ts";
import { waitFor } from "./helpers/util.ts";
import { openSocket } from "./helpers/ws.ts";

let stack: Stack;
/** SUBMIT_RATE_PER_SOCKET=2, SUBMIT_BURST_PER_SOCKET=4; SUBMIT_RATE_PER_CLIENT=2, SUBMIT_BURST_PER_CLIENT=3. */
let rated: ServerProc;
/** As `rated`'s per-client limits, behind a proxy (TRUST_PROXY=1). */
let proxied: ServerProc;
/** MAX_SOCKETS=3, IDLE_TIMEOUT_S=2. */
let small: ServerProc;

const limits = { MAX_PAYLOAD_BYTES: "4096", MAX_ARGS_BYTES: "256", MAX_JSON_DEPTH: "8", MAX_INFLIGHT_PER_SOCKET: "3" };

beforeAll(async () => {
  stack = await startStack("limits", { workers: 1, env: limits });
  const perClient = { SUBMIT_RATE_PER_CLIENT: "2", SUBMIT_BURST_PER_CLIENT: "3" };
  [rated, proxied, small] = await Promise.all([
    startServer({ ...stack.env, MAX_INFLIGHT_PER_SOCKET: "1000", SUBMIT_RATE_PER_SOCKET: "2", SUBMIT_BURST_PER_SOCKET: "4", ...perClient }),
    startServer({ ...stack.env, ...perClient, TRUST_PROXY: "1" }),
    startServer({ ...stack.env, MAX_INFLIGHT_PER_SOCKET: "1000", MAX_SOCKETS: "3", IDLE_TIMEOUT_S: "2" }),
  ]);
});
afterAll(async () => {
  await Promise.all([rated?.kill("SIGKILL"), proxied?.kill("SIGKILL"), small?.kill("SIGKILL")]);
  await stack?.stop();
});

const upgradeHeaders = { upgrade: "websocket", connection: "upgrade", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13" };

/** A /ws socket answers a normal submit: proof it is still open and serving. */
async function roundTrip(s: Awaited<ReturnType<typeof openSocket>>, ref = "ok"): Promise<void> {
  s.send({ type: "submit", ref, task: "test_task", args: { task_id: ref } });
  const accepted = (await s.until((f) => f.ref === ref)).at(-1);
  expect(accepted).toMatchObject({ type: "accepted", ref });
  expect((await s.until((f) => f.id === accepted.id)).at(-1)).toMatchObject({ type: "result", result: ref });
}

describe("frame size (MAX_PAYLOAD_BYTES)", () => {
  test("a /ws frame over the limit closes the socket with 1009", async () => {
    const s = await openSocket(`${stack.server.ws}/ws`);
    s.send(JSON.stringify({ type: "submit", ref: "big", task: "test_task", args: { task_id: "x".repeat(5000) } }));
    expect((await s.closed).code).toBe(1009);
  });

  test("so does an /async_task/ frame", async () => {
    const s = await openSocket(`${stack.server.ws}/async_task/`);
    s.send(JSON.stringify({ task_id: "x".repeat(5000) }));
    expect((await s.closed).code).toBe(1009);
  });

  test("a frame just under the limit is served", async () => {
    const s = await openSocket(`${stack.server.ws}/ws`);
    s.send(JSON.stringify({ type: "submit", ref: "r", task: "nope", args: { pad: "x".repeat(3900) } }));
    expect(await s.next()).toMatchObject({ type: "error", ref: "r", error: { code: "unknown_task" } });
    s.close();
  });

  test("an HTTP body over the limit gets 413 naming the limit; one far over is refused unread", async () => {
    const res = await fetch(`${stack.server.http}/tasks`, { method: "POST", body: JSON.stringify({ task: "test_task", args: { task_id: "x".repeat(6_000) } }) });
    expect(res.status).toBe(413);
    expect(((await res.json()) as any).error).toMatchObject({ code: "too_large", message: expect.stringContaining("MAX_PAYLOAD_BYTES") });
    const huge = await fetch(`${stack.server.http}/tasks`, { method: "POST", body: "x".repeat(1_000_000) });
    expect(huge.status).toBe(413);
    const ok = await fetch(`${stack.server.http}/tasks`, { method: "POST", body: JSON.stringify({ task: "test_task", args: { task_id: 1 } }) });
    expect(ok.status).toBe(202);
  });
});

describe("bad frames keep the /ws socket open", () => {
  test("binary frames, valid UTF-8 or not, get bad_json", async () => {
    const s = await openSocket(`${stack.server.ws}/ws`);
    s.ws.send(new Uint8Array([0xff, 0xfe, 0x00, 0x80]));
    s.ws.send(new TextEncoder().encode(JSON.stringify({ type: "submit", ref: "b", task: "test_task", args: { task_id: 1 } })));
    for (let i = 0; i < 2; i++) expect(await s.next()).toMatchObject({ type: "error", error: { code: "bad_json", message: expect.stringContaining("text frame") } });
    await roundTrip(s);
    s.close();
  });

  test("a text frame that is not UTF-8 fails the connection with 1007 (RFC 6455 8.1, enforced by Bun)", async () => {
    const raw = await rawWebSocket(stack.server.port, "/ws");
    raw.send(OP.text, Buffer.from([0x7b, 0xff, 0xfe, 0x7d]));
    await waitFor(() => raw.closeCode() !== undefined, 5_000, "close frame");
    expect(raw.closeCode()).toBe(1007);
    raw.destroy();
  });
});

describe("JSON depth (MAX_JSON_DEPTH=8) and args size (MAX_ARGS_BYTES=256)", () => {
  test("nesting deeper than the limit gets too_large on /ws; at the limit it is parsed", async () => {
    const s = await openSocket(`${stack.server.ws}/ws`);
    const nest = (n: number) => "[".repeat(n) + "]".repeat(n);
    s.send(`{"type":"submit","ref":"deep","task":"test_task","args":{"task_id":1,"x":${nest(8)}}}`);
    const e = await s.next();
    expect(e).toMatchObject({ type: "error", error: { code: "too_large", message: expect.stringContaining("MAX_JSON_DEPTH") } });
    s.send(`{"type":"submit","ref":"ok7","task":"test_task","args":{"task_id":1,"x":${nest(6)}}}`);
    expect(await s.next()).toMatchObject({ type: "accepted", ref: "ok7" });
    await s.until((f) => f.type === "result");
    // 1000 levels of arrays, inside the frame limit: refused before JSON.parse sees it.
    s.send(nest(1000));
    expect(await s.next()).toMatchObject({ type: "error", error: { code: "too_large" } });
    await roundTrip(s);
    s.close();
  });

  test("on /async_task/ too deep answers the too_large row and closes 1000", async () => {
    const s = await openSocket(`${stack.server.ws}/async_task/`);
    s.send(`{"task_id":1,"x":${"[".repeat(20)}${"]".repeat(20)}}`);
    const closed = await s.closed;
    expect(s.pending().map((f) => JSON.parse(f))).toEqual([{ msg: "invalid parameter format", flag: false, code: "too_large" }]);
    expect(closed.code).toBe(1000);
  });

  test("args over the limit get too_large naming MAX_ARGS_BYTES, with the ref; no accepted follows", async () => {
    const s = await openSocket(`${stack.server.ws}/ws`);
    s.send({ type: "submit", ref: "fat", task: "test_task", args: { task_id: "y".repeat(300) } });
    expect(await s.next()).toMatchObject({ type: "error", ref: "fat", error: { code: "too_large", message: expect.stringContaining("MAX_ARGS_BYTES") } });
    await roundTrip(s);
    expect(s.pending()).toEqual([]);
    s.close();
    const http = await fetch(`${stack.server.http}/tasks`, { method: "POST", body: JSON.stringify({ task: "test_task", args: { task_id: "y".repeat(300) } }) });
    expect(http.status).toBe(413);
    expect(((await http.json()) as any).error.code).toBe("too_large");
  });

  test("the args limit counts UTF-8 bytes: 100 CJK characters (300 bytes) are over 256, 200 ASCII ones are not", async () => {
    const s = await openSocket(`${stack.server.ws}/ws`);
    s.send({ type: "submit", ref: "cjk", task: "test_task", args: { task_id: "任".repeat(100) } });
    expect(await s.next()).toMatchObject({ type: "error", ref: "cjk", error: { code: "too_large", message: expect.stringContaining("bytes") } });
    s.send({ type: "submit", ref: "ascii", task: "test_task", args: { task_id: "a".repeat(200) } });
    expect(await s.next()).toMatchObject({ type: "accepted", ref: "ascii" });
    s.close();
  });
});

test("tasks in flight per socket (MAX_INFLIGHT_PER_SOCKET=3): the 4th gets limit_exceeded, and room returns when one ends", async () => {
  const s = await openSocket(`${stack.server.ws}/ws`);
  for (let i = 0; i < 3; i++) s.send({ type: "submit", ref: `slow${i}`, task: "test_task", args: { task_id: i, delay_ms: 800 } });
  // Three accepts, in whatever order their stores answered (a lone submit and a batch go on two connections).
  let n = 0;
  const accepted = await s.until((f) => f.type === "accepted" && ++n === 3);
  expect(accepted.filter((f) => f.type === "accepted").map((f) => f.ref).sort()).toEqual(["slow0", "slow1", "slow2"]);
  s.send({ type: "submit", ref: "fourth", task: "test_task", args: { task_id: 4 } });
  expect(await s.next()).toMatchObject({ type: "error", ref: "fourth", error: { code: "limit_exceeded", message: expect.stringContaining("MAX_INFLIGHT_PER_SOCKET") } });
  // another socket is not affected
  const other = await openSocket(`${stack.server.ws}/ws`);
  await roundTrip(other);
  other.close();
  await s.until((f) => f.type === "result" && f.result === 0);
  await roundTrip(s, "after");
  s.close();
});

describe("submit rate per socket (token bucket: 2/s, burst 4)", () => {
  test("past the burst submits get rate_limited with their ref; the bucket refills", async () => {
    const s = await openSocket(`${rated.ws}/ws`);
    for (let i = 0; i < 7; i++) s.send({ type: "submit", ref: `r${i}`, task: "test_task", args: { task_id: i } });
    const frames: any[] = [];
    while (frames.filter((f) => f.type === "result" || f.type === "error").length < 7) frames.push(await s.next());
    const limited = frames.filter((f) => f.type === "error");
    expect(limited.length).toBeGreaterThanOrEqual(2); // 7 sent, 4 in the burst, at most one refilled meanwhile
    for (const e of limited) expect(e).toMatchObject({ error: { code: "rate_limited", message: expect.stringContaining("SUBMIT_RATE_PER_SOCKET") } });
    expect(limited.map((e) => e.ref)).toContain("r6");
    expect(frames.filter((f) => f.type === "accepted").map((f) => f.ref)).toEqual(expect.arrayContaining(["r0", "r1", "r2", "r3"]));
    // subscribe and cancel draw on the same bucket
    s.send({ type: "cancel", id: "0193f7c2-6d1e-7a51-9c3e-41f0d2b8a9e4" });
    expect(await s.next()).toMatchObject({ type: "error", error: { code: "rate_limited" } });
    await Bun.sleep(1_100); // 2/s: at least two tokens back
    await roundTrip(s, "later");
    // the limit is per socket: a fresh socket has its own burst
    const fresh = await openSocket(`${rated.ws}/ws`);
    await roundTrip(fresh);
    fresh.close();
    s.close();
  });
});

describe("HTTP submits per client (token bucket per address: 2/s, burst 3)", () => {
  const post = (base: string, headers: Record<string, string> = {}) =>
    fetch(`${base}/tasks`, { method: "POST", headers, body: JSON.stringify({ task: "test_task", args: { task_id: 1 } }) });

  test("past the burst POST /tasks gets 429 rate_limited with Retry-After, naming the setting; the bucket refills", async () => {
    for (let i = 0; i < 3; i++) expect((await post(rated.http)).status).toBe(202);
    const refused = await post(rated.http);
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("1");
    expect(await refused.json()).toEqual({ error: { code: "rate_limited", message: "more than 2 submits/s from this client (SUBMIT_RATE_PER_CLIENT); retry in a second" } });
    // Without TRUST_PROXY a forwarded address is the client's own say, and changes nothing.
    expect((await post(rated.http, { "x-forwarded-for": "10.9.9.9" })).status).toBe(429);
    await Bun.sleep(600); // 2/s: a token back
    expect((await post(rated.http)).status).toBe(202);
  });

  test("behind a trusted proxy each forwarded client has its own bucket, and what a client writes before the proxy's entry is ignored", async () => {
    for (let i = 0; i < 3; i++) expect((await post(proxied.http, { "x-forwarded-for": "10.0.0.1" })).status).toBe(202);
    expect((await post(proxied.http, { "x-forwarded-for": "10.0.0.1" })).status).toBe(429);
    expect((await post(proxied.http, { "x-forwarded-for": "10.0.0.2" })).status).toBe(202);
    // The proxy appends the address it saw: the last entry. An earlier one is whatever the client sent.
    expect((await post(proxied.http, { "x-forwarded-for": "203.0.113.7, 10.0.0.1" })).status).toBe(429);
  });
});

describe("open sockets per server (MAX_SOCKETS=3) and idle timeout (IDLE_TIMEOUT_S=2)", () => {
  test("the 4th upgrade is refused with HTTP 503 limit_exceeded; a closed socket frees its place", async () => {
    const open = await Promise.all([0, 1, 2].map(() => openSocket(`${small.ws}/ws`)));
    const refused = await fetch(`${small.http}/ws`, { headers: upgradeHeaders });
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as any).error).toMatchObject({ code: "limit_exceeded", message: expect.stringContaining("MAX_SOCKETS") });
    expect((await fetch(`${small.http}/healthz`)).status).toBe(200); // plain HTTP still served
    open[0]!.close();
    await open[0]!.closed;
    await waitFor(async () => (await fetch(`${small.http}/metrics`).then((r) => r.text())).includes("taskwire_sockets 2"), 5_000, "socket count 2");
    const again = await openSocket(`${small.ws}/ws`);
    await roundTrip(again);
    for (const s of [again, open[1]!, open[2]!]) s.close();
    await waitFor(async () => (await fetch(`${small.http}/metrics`).then((r) => r.text())).includes("taskwire_sockets 0"), 5_000, "socket count 0");
  });

  test("ten upgrades at once: exactly three open, the rest are refused", async () => {
    const tries = Array.from({ length: 10 }, () => new WebSocket(`${small.ws}/ws`));
    const outcomes = await Promise.all(tries.map((ws) => new Promise<string>((resolve) => {
      ws.onopen = () => resolve("open");
      ws.onerror = () => resolve("refused");
    })));
    expect(outcomes.filter((o) => o === "open").length).toBe(3);
    await waitFor(async () => (await fetch(`${small.http}/metrics`).then((r) => r.text())).includes("taskwire_sockets 3"), 5_000, "socket count 3");
    for (const ws of tries) ws.close();
    await waitFor(async () => (await fetch(`${small.http}/metrics`).then((r) => r.text())).includes("taskwire_sockets 0"), 5_000, "socket count 0");
  });

  test("a peer that never answers pings is dropped; one that does stays", async () => {
    const silent = await rawWebSocket(small.port, "/ws"); // reads, but never sends a pong
    const alive = await openSocket(`${small.ws}/ws`); // Bun's client answers pings by itself
    await waitFor(() => silent.ended(), 20_000, "the silent peer to be dropped");
    expect(silent.frames.some((f) => f.opcode === OP.ping)).toBe(true);
    await roundTrip(alive, "still-here");
    alive.close();
  }, 30_000);
});
