/**
 * File-based routes that survive `bun build --compile`: this Bun plugin replaces views/_routes.ts with
 * static imports of every views/*.ts file (underscore files excepted), so the bundler sees each view.
 * The same plugin is preloaded by bunfig.toml for `bun run` and `bun test`, and passed to Bun.build by
 * scripts/build.ts; nothing scans a directory at run time in a compiled binary.
 */
import { type BunPlugin, plugin } from "bun";
import { readdirSync } from "node:fs";
import { join, relative, sep } from "node:path";

const viewsDir = join(import.meta.dir, "..", "views");

/** Route name -> file, for every view file below views/ (nested folders give nested routes). */
export function listViews(dir = viewsDir): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const ent of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (ent.name.startsWith("_") || ent.name.startsWith(".")) continue;
      const full = join(d, ent.name);
      if (ent.isDirectory()) walk(full);
      else if (ent.name.endsWith(".ts") && !ent.name.endsWith(".test.ts") && !ent.name.endsWith(".d.ts")) {
        out.set(relative(dir, full).slice(0, -3).split(sep).join("/"), full);
      }
    }
  };
  walk(dir);
  return out;
}

export function routesModule(dir = viewsDir): string {
  const views = [...listViews(dir)];
  const lines = views.map(([, file], i) => `import * as v${i} from ${JSON.stringify(file)};`);
  lines.push(`export default { ${views.map(([route], i) => `${JSON.stringify(route)}: v${i}`).join(", ")} };`);
  return lines.join("\n");
}

export const viewsPlugin: BunPlugin = {
  name: "taskwire-views",
  setup(build) {
    build.onLoad({ filter: /[\\/]views[\\/]_routes\.ts$/ }, () => ({ contents: routesModule(), loader: "ts" }));
  },
};

// Preloaded by bunfig.toml: register for this process (harmless where only the export is wanted).
plugin(viewsPlugin);
