/** Emits progress {step, of} for each step, then returns "done": the task for progress bars and replay. */
import { z } from "zod";
import { defineTask, sleep } from "./define.ts";

export default defineTask({
  name: "countdown",
  description: "Counts steps, reporting each as progress.",
  args: z.object({
    steps: z.number().int().min(1).max(10_000),
    interval_ms: z.number().int().min(0).max(60_000).optional(),
  }),
  async run(args, ctx) {
    for (let step = 1; step <= args.steps; step++) {
      await sleep(args.interval_ms ?? 0, ctx.signal);
      ctx.progress({ step, of: args.steps });
    }
    return "done" as const;
  },
});
