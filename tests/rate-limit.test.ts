/** The per-client token buckets behind POST /tasks's limit (lib/rate-limit.ts), on a clock the test sets. */
import { expect, test } from "bun:test";
import { ClientBuckets, MAX_CLIENTS } from "../lib/rate-limit.ts";

test("a client gets its burst, then one request per 1/rate seconds; another client has its own bucket", () => {
  const b = new ClientBuckets(2, 3);
  expect([1, 2, 3, 4].map(() => b.take("a", 0))).toEqual([true, true, true, false]);
  expect(b.take("b", 0)).toBe(true);
  expect(b.take("a", 400)).toBe(false); // 0.8 of a token
  expect(b.take("a", 500)).toBe(true);
  expect(b.take("a", 10_000)).toBe(true); // refilled, to the burst and no further
  expect([1, 2, 3].map(() => b.take("a", 10_000))).toEqual([true, true, false]);
});

test("memory stays bounded: past MAX_CLIENTS the idle (full) buckets go first, then the oldest", () => {
  const b = new ClientBuckets(1, 2);
  for (let i = 0; i < MAX_CLIENTS; i++) b.take(`c${i}`, 0);
  expect(b.clients).toBe(MAX_CLIENTS);
  // None is full yet (each spent a token): the oldest makes room, and the newcomer is served.
  expect(b.take("new", 0)).toBe(true);
  expect(b.clients).toBe(MAX_CLIENTS);
  expect(b.take("c0", 0)).toBe(true); // dropped, so it starts again full
  // A second later every bucket is full again: all of them are dropped for the next newcomer.
  expect(b.take("later", 1_000)).toBe(true);
  expect(b.clients).toBe(1);
});
