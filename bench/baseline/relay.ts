/**
 * What the relay floor's server and worker share: its Redis keys (under "relay:", beside nothing of
 * taskwire's) and the one message format each hop carries.
 */
export const QUEUE = "relay:queue";
export const redisUrl = () => process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/** Splits "<a> <b> <rest>" at its first two spaces. */
export function split3(s: string): [string, string, string] {
  const i = s.indexOf(" ");
  const j = s.indexOf(" ", i + 1);
  return [s.slice(0, i), s.slice(i + 1, j), s.slice(j + 1)];
}
