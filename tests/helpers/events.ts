/** Collects /ws frames per task in the background, so tests can kill processes while events flow and check them after. */
import { expect } from "bun:test";
import { waitFor } from "./util.ts";
import type { TestSocket } from "./ws.ts";

export const TERMINAL = new Set(["result", "failed", "cancelled"]);

export interface Tally {
  /** ref -> task id, from `accepted` frames. */
  idOf: Map<string, string>;
  /** task id -> its event frames in arrival order (everything carrying an `id` and a `seq`). */
  events: Map<string, any[]>;
  /** `error` frames and frames of no known kind. */
  errors: any[];
  /** Resolves once every id has a terminal event; throws after timeoutMs naming the ones still open. */
  settled(ids: () => Iterable<string>, timeoutMs: number): Promise<void>;
  /** Stops reading; returns the frames that arrived after the last wait (none expected). */
  stop(): Promise<void>;
}

export function tally(s: TestSocket): Tally {
  const t = { idOf: new Map<string, string>(), events: new Map<string, any[]>(), errors: [] as any[] };
  let stopped = false;
  let closed = false;
  void s.closed.then(() => (closed = true));
  const pump = (async () => {
    while (!stopped && !closed) {
      let f: any;
      try {
        f = await s.next(200);
      } catch {
        continue; // nothing within 200 ms (or closed): look at the flags again
      }
      if (f.type === "accepted") t.idOf.set(f.ref, f.id);
      else if (typeof f.id === "string" && typeof f.seq === "number") {
        const list = t.events.get(f.id) ?? [];
        list.push(f);
        t.events.set(f.id, list);
      } else t.errors.push(f);
    }
  })();
  const open = (ids: Iterable<string>) => [...ids].filter((id) => !(t.events.get(id) ?? []).some((f) => TERMINAL.has(f.type)));
  return {
    ...t,
    async settled(ids, timeoutMs) {
      await waitFor(() => open(ids()).length === 0, timeoutMs, `terminal events; still open: ${open(ids()).join(", ")}; errors: ${JSON.stringify(t.errors)}`);
    },
    async stop() {
      stopped = true;
      await pump;
    },
  };
}

export const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

/** One watcher's frames of one task: seq after+1, after+2, ... without gaps or repeats, exactly one terminal event, last. */
export function expectWellFormed(frames: any[], after = 0): void {
  const seqs = frames.map((f) => f.seq);
  expect(seqs).toEqual(range(after + 1, after + frames.length));
  expect(frames.filter((f) => TERMINAL.has(f.type)).length).toBe(1);
  expect(TERMINAL.has(frames.at(-1)?.type)).toBe(true);
}
