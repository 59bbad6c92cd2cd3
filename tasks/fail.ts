/** Always throws: how clients and tests see a failed task. */
import { z } from "zod";
import { defineTask } from "./define.ts";

export default defineTask({
  name: "fail",
  description: "Throws an error with the given message.",
  args: z.object({ message: z.string().max(10_000).optional() }),
  run(args): never {
    throw new Error(args.message ?? "task failed on purpose");
  },
});
