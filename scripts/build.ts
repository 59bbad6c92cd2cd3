/**
 * `npm run build`: one executable, dist/taskwire (`bun build --compile`, minified, sourcemaps and bytecode
 * embedded), holding the CLI, server, worker, every view (lib/views-plugin.ts), task, Lua script, the
 * dashboard and /client.js. The version from package.json and the git commit are defined as constants.
 *
 *   bun run scripts/build.ts [--outfile dist/taskwire] [--target bun-linux-arm64] [--no-bytecode]
 *   TASKWIRE_COMMIT=<sha> overrides the commit (e.g. building from an export without .git).
 */
import { statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { gitCommit } from "../lib/cli/version.ts";
import { listViews, viewsPlugin } from "../lib/views-plugin.ts";

const ROOT = join(import.meta.dir, "..");

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const v = process.argv[i + 1];
  if (v === undefined || v.startsWith("--")) {
    console.error(`build: --${name} needs a value, e.g. --${name} ${name === "target" ? "bun-linux-x64" : "dist/taskwire"}`);
    process.exit(2);
  }
  return v;
}

const known = new Set(["--outfile", "--target", "--no-bytecode"]);
const bad = process.argv.slice(2).find((a, i, all) => a.startsWith("--") && !known.has(a) && !known.has(all[i - 1] ?? ""));
if (bad) {
  console.error(`build: unknown flag ${bad}; use --outfile <path>, --target <bun-os-arch>, --no-bytecode`);
  process.exit(2);
}

const outfile = resolve(flag("outfile") ?? join(ROOT, "dist", "taskwire"));
const target = flag("target") as Bun.Build.CompileTarget | undefined;
const bytecode = !process.argv.includes("--no-bytecode");
const pkg = (await Bun.file(join(ROOT, "package.json")).json()) as { version: string };
const commit = process.env.TASKWIRE_COMMIT || gitCommit(ROOT);
const built = new Date().toISOString().replace(/\.\d+Z$/, "Z");

const started = performance.now();
const out = await Bun.build({
  entrypoints: [join(ROOT, "cli.ts")],
  compile: {
    outfile,
    ...(target ? { target } : {}),
    // The binary must not pick up a bunfig.toml (e.g. this repo's preload) from wherever it is run.
    autoloadBunfig: false,
  },
  target: "bun",
  format: "esm",
  minify: true,
  sourcemap: "linked",
  bytecode,
  define: {
    TASKWIRE_VERSION: JSON.stringify(pkg.version),
    TASKWIRE_COMMIT: JSON.stringify(commit),
    TASKWIRE_BUILT: JSON.stringify(built),
  },
  plugins: [viewsPlugin],
});
if (!out.success) {
  for (const log of out.logs) console.error(log);
  console.error("build: failed");
  process.exit(1);
}
const mb = (statSync(outfile).size / 1024 / 1024).toFixed(1);
console.log(
  `build: ${relative(process.cwd(), outfile) || outfile} (${mb} MiB) taskwire ${pkg.version} commit ${commit}, ` +
    `${listViews().size} views, ${bytecode ? "bytecode" : "no bytecode"}, ${Math.round(performance.now() - started)} ms`,
);
