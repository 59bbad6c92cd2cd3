/**
 * Placeholder for the route map. lib/views-plugin.ts replaces this module's source with static imports
 * of every file in views/ (bunfig.toml preloads it; scripts/build.ts passes it to Bun.build).
 */
import type { View } from "../lib/router.ts";

throw new Error("views/_routes.ts loaded without lib/views-plugin.ts: run from the project root (bunfig.toml preloads it)");

export default {} as Record<string, View>;
