/** Progress on stderr for `taskwire submit`: a redrawn bar on a terminal, one plain line per event otherwise. */

export interface ProgressSink {
  /** A progress event's data. */
  update(data: unknown): void;
  /** A line of status (accepted, reconnecting, ...) that must not be overwritten by the bar. */
  note(line: string): void;
  /** Clears the bar before the final output. */
  end(): void;
}

/** done/total from the shapes tasks commonly report: {step, of}, {done|current, total}, {percent}, or a 0..1 number. */
export function fraction(data: unknown): { done: number; total: number } | undefined {
  if (typeof data === "number" && data >= 0 && data <= 1) return { done: data * 100, total: 100 };
  if (typeof data !== "object" || data === null) return undefined;
  const d = data as Record<string, unknown>;
  const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
  const total = num(d.of) ?? num(d.total);
  const done = num(d.step) ?? num(d.done) ?? num(d.current);
  if (total !== undefined && done !== undefined && total > 0) return { done: Math.min(done, total), total };
  const pct = num(d.percent);
  if (pct !== undefined) return { done: Math.max(0, Math.min(pct, 100)), total: 100 };
  return undefined;
}

export function describe(data: unknown): string {
  const f = fraction(data);
  if (f && f.total === 100 && !(typeof data === "object" && data !== null && "of" in data)) return `${Math.round(f.done)}%`;
  if (f) return `${f.done}/${f.total}`;
  const s = JSON.stringify(data) ?? String(data);
  return s.length > 200 ? `${s.slice(0, 197)}...` : s;
}

export function bar(data: unknown, columns: number, label: string): string {
  const f = fraction(data);
  const text = describe(data);
  if (!f) return `${label} ${text}`.slice(0, columns - 1);
  const pct = `${Math.floor((f.done / f.total) * 100)}%`.padStart(4);
  const width = Math.max(10, Math.min(40, columns - label.length - text.length - pct.length - 8));
  const filled = Math.round((f.done / f.total) * width);
  const tail = text.endsWith("%") ? "" : ` ${text}`; // a bare percentage is already shown
  return `${label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${pct}${tail}`.slice(0, columns - 1);
}

export function makeProgress(label: string, opts: { quiet: boolean; stream?: NodeJS.WriteStream } = { quiet: false }): ProgressSink {
  const out = opts.stream ?? process.stderr;
  if (opts.quiet) return { update() {}, note() {}, end() {} };
  if (!out.isTTY) {
    return {
      update: (data) => void out.write(`${label} progress ${describe(data)}\n`),
      note: (line) => void out.write(`${line}\n`),
      end() {},
    };
  }
  let shown = false;
  let last: unknown;
  let drawnAt = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const draw = () => {
    timer = undefined;
    drawnAt = performance.now();
    out.write(`\r\x1b[2K${bar(last, out.columns || 80, label)}`);
    shown = true;
  };
  const clear = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (shown) out.write("\r\x1b[2K");
    shown = false;
  };
  return {
    update(data) {
      last = data;
      // Redraw at most ~20 times a second: a fast task's thousands of events would flood the terminal.
      const wait = 50 - (performance.now() - drawnAt);
      if (wait <= 0) draw();
      else timer ??= setTimeout(draw, wait);
    },
    note(line) {
      const had = shown;
      clear();
      out.write(`${line}\n`);
      if (had && last !== undefined) draw();
    },
    end: clear,
  };
}
