/** The seed task: returns its task_id unchanged (same JSON type) after delay_ms. */
import { z } from "zod";
import { defineTask, sleep } from "./define.ts";

export default defineTask({
  name: "test_task",
  description: "Returns task_id unchanged after delay_ms.",
  args: z.object({
    // zod's own word for a failed union is "Invalid input": say what is wanted instead.
    task_id: z.union([z.string(), z.number()], { error: (iss) => (iss.input === undefined ? "required: a string or a number" : "must be a string or a number") }),
    delay_ms: z.number().int().min(0).max(3_600_000).optional(),
  }),
  async run(args, ctx) {
    if (args.delay_ms) await sleep(args.delay_ms, ctx.signal);
    return args.task_id;
  },
});
