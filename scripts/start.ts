/** `npm start`: the same as `taskwire start` (lib/cli/start.ts), from the source tree. */
import { run } from "../lib/cli/start.ts";
import { CliError } from "../lib/cli/common.ts";

try {
  process.exit(await run(process.argv.slice(2)));
} catch (err) {
  if (!(err instanceof CliError)) throw err;
  console.error(`taskwire: ${err.message}`);
  process.exit(err.exit);
}
