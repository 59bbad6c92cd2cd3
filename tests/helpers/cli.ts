/** Runs a command to completion for CLI tests (`bun run cli.ts ...` or the built binary): exit code, stdout, stderr, bounded in time. */
import { ROOT } from "./procs.ts";

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

export async function run(cmd: string[], opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<Ran> {
  const proc = Bun.spawn(cmd, {
    cwd: opts.cwd ?? ROOT,
    // A TASKWIRE_URL/TOKEN from the developer's shell must not leak into what is tested.
    env: { ...process.env, TASKWIRE_URL: "", TASKWIRE_TOKEN: "", ...opts.env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const ms = opts.timeoutMs ?? 20_000;
  const timer = setTimeout(() => proc.kill("SIGKILL"), ms);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  if (proc.signalCode === "SIGKILL") throw new Error(`${cmd.join(" ")} ran over ${ms} ms\nstdout: ${stdout}\nstderr: ${stderr}`);
  return { code, stdout, stderr };
}

/** `taskwire <args>` from the source tree. */
export function cli(args: string[], env: Record<string, string> = {}, timeoutMs?: number): Promise<Ran> {
  return run([process.execPath, "run", "cli.ts", ...args], { env, timeoutMs });
}

export interface Kept {
  proc: ReturnType<typeof Bun.spawn>;
  stdout(): string;
  stderr(): string;
  /** stdout and stderr as they came. */
  output(): string;
}

/** A command left running (a server, or a CLI call a test acts on mid-way), its output kept as it comes. */
export function spawnKept(cmd: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Kept {
  const out = { stdout: "", stderr: "", all: "" };
  const proc = Bun.spawn(cmd, { cwd: opts.cwd ?? ROOT, env: { ...process.env, TASKWIRE_URL: "", TASKWIRE_TOKEN: "", ...opts.env }, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const pump = async (s: ReadableStream<Uint8Array>, k: "stdout" | "stderr") => {
    const dec = new TextDecoder();
    for await (const c of s) {
      const text = dec.decode(c);
      out[k] += text;
      out.all += text;
    }
  };
  void pump(proc.stdout as ReadableStream<Uint8Array>, "stdout");
  void pump(proc.stderr as ReadableStream<Uint8Array>, "stderr");
  return { proc, stdout: () => out.stdout, stderr: () => out.stderr, output: () => out.all };
}
