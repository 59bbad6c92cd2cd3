/** The version and git commit: constants defined by scripts/build.ts in a binary, package.json and git in the source tree. */
import pkg from "../../package.json" with { type: "json" };

declare const TASKWIRE_VERSION: string | undefined;
declare const TASKWIRE_COMMIT: string | undefined;
declare const TASKWIRE_BUILT: string | undefined;

export interface VersionInfo {
  version: string;
  commit: string;
  /** ISO time of the build, or "source" when run from the source tree. */
  built: string;
}

export function versionInfo(): VersionInfo {
  if (typeof TASKWIRE_VERSION === "string") {
    return { version: TASKWIRE_VERSION, commit: typeof TASKWIRE_COMMIT === "string" ? TASKWIRE_COMMIT : "unknown", built: typeof TASKWIRE_BUILT === "string" ? TASKWIRE_BUILT : "unknown" };
  }
  return { version: pkg.version, commit: gitCommit(import.meta.dir), built: "source" };
}

/** HEAD's short hash, "-dirty" when tracked files differ from it; "unknown" outside a git checkout. */
export function gitCommit(cwd: string, env: Record<string, string | undefined> = process.env): string {
  const git = (...args: string[]) => {
    try {
      const r = Bun.spawnSync(["git", "--no-optional-locks", ...args], { cwd, env, stdout: "pipe", stderr: "ignore" });
      return r.exitCode === 0 ? r.stdout.toString().trim() : undefined;
    } catch {
      return undefined; // git not installed
    }
  };
  const head = git("rev-parse", "--short=12", "HEAD");
  if (!head) return "unknown";
  return git("status", "--porcelain", "--untracked-files=no") ? `${head}-dirty` : head;
}

export function versionLine(): string {
  const v = versionInfo();
  return `taskwire ${v.version} (commit ${v.commit}, ${v.built === "source" ? "source tree" : `built ${v.built}`}, bun ${Bun.version})`;
}
