/**
 * The submit frame's hand check (lib/protocol.ts isPlainSubmit) against its zod schema: whatever the hand
 * check lets through, the schema accepts with the same fields; and the common submit (no options) does not
 * need the schema at all. Pure: no Redis, no server.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { clientFrameSchemas, isPlainSubmit, parseClientFrame } from "../lib/protocol.ts";

/** Strings around each limit (0, 1, 128, 129, 256, 257 characters), and other JSON values in their place. */
const str = fc.oneof(fc.constantFrom(0, 1, 127, 128, 129, 255, 256, 257).map((n) => "x".repeat(n)), fc.string({ maxLength: 300 }));
const notString = fc.oneof(fc.integer(), fc.constant(null), fc.boolean(), fc.constant([]), fc.constant({}));
const record = fc.oneof(
  fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
  fc.constant(JSON.parse('{"__proto__": {"polluted": true}, "task_id": 1}') as Record<string, unknown>),
  fc.constant(JSON.parse('{"constructor": 1}') as Record<string, unknown>),
);
const field = (v: fc.Arbitrary<unknown>) => fc.option(fc.oneof(v, notString, record), { nil: undefined, freq: 3 });
const submit = fc.record(
  { type: fc.constant("submit"), ref: field(str), task: field(str), args: field(record), key: field(str), options: fc.option(fc.oneof(record, notString), { nil: undefined, freq: 2 }), extra: field(str) },
  { requiredKeys: ["type"] },
).map((o) => JSON.parse(JSON.stringify(o)) as Record<string, unknown>); // as a frame arrives: parsed JSON

describe("the submit frame's hand check", () => {
  test("accepts only what the schema accepts, and the frame it returns carries the schema's fields", () => {
    fc.assert(
      fc.property(submit, (o) => {
        const schema = clientFrameSchemas.submit.safeParse(o);
        if (isPlainSubmit(o)) {
          expect(schema.success).toBe(true);
          const { type, ref, task, args, key } = o;
          expect(schema.data).toEqual({ type, ref, task, ...(args === undefined ? {} : { args }), ...(key === undefined ? {} : { key }) } as never);
        } else if (schema.success && o.options === undefined && !Object.hasOwn((o.args ?? {}) as object, "__proto__")) {
          throw new Error(`the schema accepts a plain submit the hand check refused: ${JSON.stringify(o)}`);
        }
      }),
      { numRuns: 3_000 },
    );
  });

  test("a refused frame still gets the schema's words: bad_request naming the field", () => {
    const cases: [string, string][] = [
      ['{"type":"submit","ref":1,"task":"test_task"}', "ref:"],
      [`{"type":"submit","ref":"${"r".repeat(129)}","task":"test_task"}`, "ref: use at most 128 characters"],
      ['{"type":"submit","ref":"r","task":""}', "task: required: a task name"],
      ['{"type":"submit","ref":"r","task":"test_task","args":[1]}', "args: must be a JSON object"],
      ['{"type":"submit","ref":"r","task":"test_task","key":""}', "key: use 1 to 256 characters"],
      ['{"type":"submit","ref":"r","task":"test_task","options":3}', "options: must be a JSON object"],
    ];
    for (const [text, words] of cases) {
      let caught: unknown;
      try {
        parseClientFrame(text, 64);
      } catch (err) {
        caught = err;
      }
      expect(caught).toMatchObject({ code: "bad_request" });
      expect((caught as Error).message).toContain(words);
    }
    // Options go to the schema too, and pass when valid.
    expect(parseClientFrame('{"type":"submit","ref":"r","task":"test_task","options":{"retries":2}}', 64)).toMatchObject({ options: { retries: 2 } });
  });
});
