/** Turns a bench run into its Markdown table and an SVG chart (throughput bars, latency percentiles), no libraries. */
import type { LoadResult } from "./load.ts";
import { median } from "./stats.ts";

export interface WorkloadReport {
  name: string;
  title: string;
  /** What issue 6 asks of this workload, in words. */
  target: string;
  runs: LoadResult[];
  /** bench --floor: run i of the floor stack, measured right after runs[i]. */
  floorRuns?: LoadResult[];
}

export interface Summary {
  throughput: number;
  throughputMin: number;
  throughputMax: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  /** Latency from the frame actually being sent (open loop, async) — p50 and p99. */
  sendP50?: number;
  sendP99?: number;
  cpuPerTaskMs?: number;
  cpuByRole: Record<string, number>;
  /** Times each process was woken per task (median over runs). */
  wakesByRole: Record<string, number>;
  verified: number;
  violations: number;
  extra: Record<string, number | string>;
}

function sumViolations(r: LoadResult): number {
  const v = r.violations;
  return v.duplicates + v.wrongValue + v.missing + v.unexpected + v.closes + Object.values(v.errors).reduce((a, b) => a + b, 0);
}

/** Medians over the runs (each figure separately), totals for verification. */
export function summarize(w: WorkloadReport): Summary {
  const m = (f: (r: LoadResult) => number | undefined) => median(w.runs.map(f).filter((x): x is number => x !== undefined && Number.isFinite(x)));
  const roles = new Set(w.runs.flatMap((r) => Object.keys(r.cpuMs)));
  const cpuByRole = Object.fromEntries([...roles].map((role) => [role, m((r) => (r.tasks > 0 ? (r.cpuMs[role] ?? NaN) / r.tasks : undefined))]));
  const wakesByRole = Object.fromEntries([...roles].map((role) => [role, m((r) => (r.tasks > 0 && r.wakes ? (r.wakes[role] ?? NaN) / r.tasks : undefined))]));
  const extraKeys = new Set(w.runs.flatMap((r) => Object.keys(r.extra)));
  const extra = Object.fromEntries([...extraKeys].map((k) => {
    const vals = w.runs.map((r) => r.extra[k]);
    return [k, typeof vals[0] === "number" ? m((r) => r.extra[k] as number) : String(vals[0])];
  }));
  return {
    throughput: m((r) => r.throughput),
    throughputMin: Math.min(...w.runs.map((r) => r.throughput)),
    throughputMax: Math.max(...w.runs.map((r) => r.throughput)),
    p50: m((r) => r.latency.p50),
    p90: m((r) => r.latency.p90),
    p99: m((r) => r.latency.p99),
    p999: m((r) => r.latency.p999),
    ...(w.runs[0]?.latencyFromSend ? { sendP50: m((r) => r.latencyFromSend?.p50), sendP99: m((r) => r.latencyFromSend?.p99) } : {}),
    ...(w.runs.some((r) => r.cpuPerTaskMs !== undefined) ? { cpuPerTaskMs: m((r) => r.cpuPerTaskMs) } : {}),
    cpuByRole,
    wakesByRole,
    verified: w.runs.reduce((a, r) => a + r.verified, 0),
    violations: w.runs.reduce((a, r) => a + sumViolations(r), 0),
    extra,
  };
}

const fmt = (x: number | undefined, digits = 2) =>
  x === undefined || !Number.isFinite(x) ? "–" : x >= 100 ? Math.round(x).toLocaleString("en-US") : x.toFixed(digits);

export function markdownTable(ws: WorkloadReport[]): string {
  const rows = [
    "| workload | tasks/s (median; min–max) | p50 ms | p99 ms | p99.9 ms | CPU ms/task (server + worker + redis) | wakes/task (server + worker + redis) | machine busy | Redis bytes held per task | results verified / violations | issue 6 target |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const w of ws) {
    const s = summarize(w);
    const roles = ["server", "worker", "redis"];
    const cpu = s.cpuPerTaskMs === undefined ? "–" : `${fmt(s.cpuPerTaskMs, 3)} (${roles.map((r) => fmt(s.cpuByRole[r], 3)).join(" + ")})`;
    const wakes = roles.every((r) => Number.isFinite(s.wakesByRole[r])) ? `${fmt(roles.reduce((a, r) => a + s.wakesByRole[r]!, 0))} (${roles.map((r) => fmt(s.wakesByRole[r])).join(" + ")})` : "–";
    let lat50 = fmt(s.p50);
    let lat99 = fmt(s.p99);
    if (s.sendP50 !== undefined) {
      lat50 += ` (${fmt(s.sendP50)} from send)`;
      lat99 += ` (${fmt(s.sendP99)})`;
    }
    let title = `${w.title} (${w.runs.length} run${w.runs.length === 1 ? "" : "s"})`;
    if (s.extra.idleSockets !== undefined) {
      title += `: ${fmt(s.extra.idleSockets as number)} idle sockets, RSS +${fmt(s.extra.rssGrowthMB as number, 1)} MB, ${fmt(s.extra.bytesPerSocket as number)} B/socket (≈${fmt(s.extra.rssGrowthPer20kMB as number, 1)} MB per 20k)`;
      if (s.extra.aloneP99 !== undefined) title += `; the same probe before they opened: p50 ${fmt(s.extra.aloneP50 as number)}, p99 ${fmt(s.extra.aloneP99 as number)} ms`;
    }
    rows.push(`| ${title} | ${fmt(s.throughput)} (${fmt(s.throughputMin)}–${fmt(s.throughputMax)}) | ${lat50} | ${lat99} | ${fmt(s.p999)} | ${cpu} | ${wakes} | ${s.extra.machineBusyPct === undefined ? "–" : `${fmt(s.extra.machineBusyPct as number, 0)} %`} | ${fmt(s.extra.redisBytesPerTask as number | undefined)} | ${s.verified.toLocaleString("en-US")} / ${s.violations} | ${w.target} |`);
  }
  return rows.join("\n");
}

/** CPU per task of each run over its paired floor run's (bench --floor): median, min and max of the ratios. */
export function floorRatios(w: WorkloadReport): { median: number; min: number; max: number } | undefined {
  const ratios = (w.floorRuns ?? []).flatMap((f, i) => {
    const r = w.runs[i]?.cpuPerTaskMs;
    return r !== undefined && f.cpuPerTaskMs ? [r / f.cpuPerTaskMs] : [];
  });
  if (ratios.length === 0) return undefined;
  return { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) };
}

/** bench --floor: each workload's CPU per task beside its floor's, measured run by run in the same minutes. */
export function floorTable(ws: WorkloadReport[], floorName: string): string {
  const rows = [
    `| workload | CPU ms/task (server + worker + redis) | ${floorName} CPU ms/task (server + worker + redis) | × the floor (median of paired runs; min–max) | p50 / p99 ms | ${floorName} p50 / p99 ms |`,
    "| --- | --- | --- | --- | --- | --- |",
  ];
  for (const w of ws) {
    const ratio = floorRatios(w);
    if (!ratio || !w.floorRuns) continue;
    const s = summarize(w);
    const f = summarize({ ...w, runs: w.floorRuns });
    const cpu = (x: Summary) => `${fmt(x.cpuPerTaskMs, 3)} (${["server", "worker", "redis"].map((r) => fmt(x.cpuByRole[r], 3)).join(" + ")})`;
    rows.push(`| ${w.title} (${w.runs.length} pairs) | ${cpu(s)} | ${cpu(f)} | ${fmt(ratio.median)} (${fmt(ratio.min)}–${fmt(ratio.max)}) | ${fmt(s.p50)} / ${fmt(s.p99)} | ${fmt(f.p50)} / ${fmt(f.p99)} |`);
  }
  return rows.join("\n");
}

/** The processes --perf counts, in the order its figures are shown. */
const PERF_ROLES = ["server", "worker", "redis"];

/** One --perf figure of a run or a summary's medians: "total (server + worker + redis)". */
export function perfCell(extra: Record<string, number | string>, k: string, digits: number): string {
  const xs = PERF_ROLES.map((role) => extra[`perf.${role}.${k}`] as number | undefined);
  return `${fmt(xs.reduce((a: number, x) => a + (x ?? NaN), 0), digits)} (${xs.map((x) => fmt(x, digits)).join(" + ")})`;
}

/**
 * bench --perf: what `perf stat` counted per task in each process (medians of runs), with the floor's when
 * paired: CPU to the microsecond, and the context switches and system calls behind it (bench/perf.ts).
 */
export function perfTable(ws: WorkloadReport[], floorName?: string): string {
  const rows = [
    "| workload | stack | CPU ms/task, perf task-clock (server + worker + redis) | context switches/task | system calls/task |",
    "| --- | --- | --- | --- | --- |",
  ];
  const row = (title: string, stack: string, s: Summary) => {
    if (PERF_ROLES.some((r) => s.extra[`perf.${r}.cpuMs`] === undefined)) return;
    rows.push(`| ${title} | ${stack} | ${perfCell(s.extra, "cpuMs", 3)} | ${perfCell(s.extra, "switches", 2)} | ${perfCell(s.extra, "syscalls", 1)} |`);
  };
  for (const w of ws) {
    row(w.title, "measured", summarize(w));
    if (w.floorRuns && floorName) row(w.title, floorName, summarize({ ...w, runs: w.floorRuns }));
  }
  return rows.length > 2 ? rows.join("\n") : "";
}

// --- SVG ---

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/**
 * Three panels: median throughput per workload; latency p50/p90/p99/p99.9 on a log scale; CPU per task by
 * process, stacked, with the floor's bar under it when the run was paired with one (bench --floor).
 */
export function svgChart(ws: WorkloadReport[], caption: string): string {
  const sums = ws.map((w) => ({ name: w.name, s: summarize(w) }));
  const rowH = 34;
  const top = 56;
  const labelW = 150;
  const panelW = 360;
  const gap = 60;
  const height = top + sums.length * rowH + 50;
  const cpuW = 300;
  const width = labelW + panelW + gap + labelW + panelW + 150 + cpuW + 110; // room for the p50 · p99 and CPU labels
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">`);
  out.push(`<rect width="100%" height="100%" fill="#fff"/>`);
  out.push(`<text x="10" y="20" font-size="14" font-weight="bold">${esc(caption)}</text>`);

  // Throughput panel (linear).
  const x0 = labelW;
  const maxT = Math.max(1, ...sums.map((x) => x.s.throughputMax));
  out.push(`<text x="${x0}" y="${top - 14}" font-weight="bold">throughput, tasks/s (median of runs; whisker min–max)</text>`);
  sums.forEach(({ name, s }, i) => {
    const y = top + i * rowH;
    const w = (s.throughput / maxT) * panelW;
    out.push(`<text x="${x0 - 8}" y="${y + 17}" text-anchor="end">${esc(name)}</text>`);
    out.push(`<rect x="${x0}" y="${y + 5}" width="${w.toFixed(1)}" height="18" fill="#4e79a7"/>`);
    const a = x0 + (s.throughputMin / maxT) * panelW;
    const b = x0 + (s.throughputMax / maxT) * panelW;
    out.push(`<line x1="${a.toFixed(1)}" x2="${b.toFixed(1)}" y1="${y + 14}" y2="${y + 14}" stroke="#222"/>`);
    out.push(`<text x="${(x0 + w + 4).toFixed(1)}" y="${y + 27}" font-size="10" fill="#333">${fmt(s.throughput)}</text>`);
  });

  // Latency panel: log10 ms, whole decades around every point.
  const lx = x0 + panelW + gap + labelW;
  const finite = sums.flatMap(({ s }) => [s.p50, s.p999]).filter((x) => Number.isFinite(x) && x > 0);
  const lo = Math.floor(Math.log10(Math.min(...finite, 1)));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...finite, 1))));
  const scale = (ms: number) => lx + ((Math.log10(Math.max(ms, 10 ** lo)) - lo) / (hi - lo)) * panelW;
  out.push(`<text x="${lx}" y="${top - 14}" font-weight="bold">latency, ms (log scale)</text>`);
  for (let e = lo; e <= hi; e++) {
    const x = scale(10 ** e);
    out.push(`<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${top}" y2="${top + sums.length * rowH}" stroke="#ddd"/>`);
    out.push(`<text x="${x.toFixed(1)}" y="${top + sums.length * rowH + 14}" text-anchor="middle" font-size="10">${10 ** e}</text>`);
  }
  const marks: [keyof Summary, string][] = [["p50", "#59a14f"], ["p90", "#edc948"], ["p99", "#f28e2b"], ["p999", "#e15759"]];
  sums.forEach(({ name, s }, i) => {
    const y = top + i * rowH;
    out.push(`<text x="${lx - 8}" y="${y + 17}" text-anchor="end">${esc(name)}</text>`);
    out.push(`<line x1="${scale(s.p50).toFixed(1)}" x2="${scale(s.p999).toFixed(1)}" y1="${y + 14}" y2="${y + 14}" stroke="#999"/>`);
    for (const [k, color] of marks) {
      const v = s[k] as number;
      out.push(`<circle cx="${scale(v).toFixed(1)}" cy="${y + 14}" r="5" fill="${color}"><title>${esc(name)} ${k} ${fmt(v)} ms</title></circle>`);
    }
    out.push(`<text x="${(scale(s.p999) + 8).toFixed(1)}" y="${y + 18}" font-size="10" fill="#333">p50 ${fmt(s.p50)} · p99 ${fmt(s.p99)}</text>`);
  });
  const ly = top + sums.length * rowH + 34;
  marks.forEach(([k, color], i) => {
    const x = lx + i * 70;
    out.push(`<circle cx="${x}" cy="${ly}" r="5" fill="${color}"/><text x="${x + 9}" y="${ly + 4}">${k === "p999" ? "p99.9" : k}</text>`);
  });

  // CPU panel: ms per task, server + worker + Redis stacked (linear); the paired floor's as a thinner bar below.
  const cx = lx + panelW + 150;
  const roles: [string, string][] = [["server", "#4e79a7"], ["worker", "#f28e2b"], ["redis", "#e15759"]];
  const floors = ws.map((w) => (w.floorRuns?.length ? summarize({ ...w, runs: w.floorRuns }) : undefined));
  const totals = sums.map(({ s }, i) => [s.cpuPerTaskMs ?? 0, floors[i]?.cpuPerTaskMs ?? 0]).flat();
  const maxC = Math.max(1e-6, ...totals);
  out.push(`<text x="${cx}" y="${top - 14}" font-weight="bold">CPU ms per task${floors.some(Boolean) ? " (thin bar: the floor, same minutes)" : ""}</text>`);
  const stacked = (x: Summary, y: number, h: number, opacity: number) => {
    let at = cx;
    for (const [role, color] of roles) {
      const v = x.cpuByRole[role];
      if (v === undefined || !Number.isFinite(v)) continue;
      const w = (v / maxC) * cpuW;
      out.push(`<rect x="${at.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${h}" fill="${color}" fill-opacity="${opacity}"><title>${role} ${fmt(v, 3)} ms</title></rect>`);
      at += w;
    }
    return at;
  };
  sums.forEach(({ s }, i) => {
    if (s.cpuPerTaskMs === undefined) return;
    const y = top + i * rowH;
    const end = stacked(s, y + 3, 14, 1);
    const f = floors[i];
    const ratio = floorRatios(ws[i]!);
    out.push(`<text x="${(end + 4).toFixed(1)}" y="${y + 14}" font-size="10" fill="#333">${fmt(s.cpuPerTaskMs, 3)}${ratio ? ` (${fmt(ratio.median)}× floor)` : ""}</text>`);
    if (f?.cpuPerTaskMs !== undefined) stacked(f, y + 19, 7, 0.45);
  });
  roles.forEach(([role, color], i) => {
    const x = cx + i * 70;
    out.push(`<rect x="${x - 5}" y="${ly - 5}" width="10" height="10" fill="${color}"/><text x="${x + 9}" y="${ly + 4}">${role}</text>`);
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}
