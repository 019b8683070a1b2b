/** Rows, targets and the plain-text tables the bench prints. */

export type Target =
  /** Slipway / reference must be at least `value`. */
  | { kind: 'ratio-min'; value: number; text: string }
  /** Slipway / reference must be at most `value` (memory). */
  | { kind: 'ratio-max'; value: number; text: string }
  /** Slipway's own figure must be at most `value` (latency). */
  | { kind: 'abs-max'; value: number; text: string };

export interface Row {
  group: string;
  label: string;
  unit: string;
  reference: number | undefined;
  slipway: number | undefined;
  /** A single informational figure (calibration), shown in the reference column's place. */
  info?: number;
  target?: Target;
  digits: number;
  lowerIsBetter?: boolean;
  ratio?: number;
  result?: 'PASS' | 'MISS' | '';
}

export function evaluate(row: Row): Row {
  const { reference, slipway, target } = row;
  const ratio =
    reference !== undefined && slipway !== undefined && reference > 0 ? slipway / reference : undefined;
  let result: Row['result'] = '';
  if (target && slipway !== undefined) {
    if (target.kind === 'abs-max') result = slipway <= target.value ? 'PASS' : 'MISS';
    else if (ratio !== undefined) {
      result = (target.kind === 'ratio-min' ? ratio >= target.value : ratio <= target.value)
        ? 'PASS'
        : 'MISS';
    }
  }
  row.ratio = ratio;
  row.result = result;
  return row;
}

function format(value: number | undefined, digits: number): string {
  if (value === undefined || Number.isNaN(value)) return '–';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function table(header: string[], body: string[][], rightAligned: Set<number>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (rightAligned.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (rightAligned.has(i) ? `${'-'.repeat(w + 1)}:` : `${'-'.repeat(w + 2)}`)).join('|')}|`;
  return [line(header), rule, ...body.map(line)].join('\n');
}

/** A Markdown table: row, unit, both figures, ratio, target, PASS/MISS. */
export function formatResultsTable(
  rows: Row[],
  labels = { reference: 'Distribution', slipway: 'Slipway' },
): string {
  const body = rows.map((row) => {
    evaluate(row);
    if (row.info !== undefined) {
      return [row.label, row.unit, format(row.info, row.digits), '', '', '', ''];
    }
    return [
      row.label,
      row.unit,
      format(row.reference, row.digits),
      format(row.slipway, row.digits),
      row.ratio === undefined ? '–' : `${row.ratio.toFixed(2)}×`,
      row.target?.text ?? '',
      row.result ?? '',
    ];
  });
  return table(
    ['Row', 'Unit', labels.reference, labels.slipway, 'Slipway/Ref', 'Target', 'Result'],
    body,
    new Set([2, 3, 4]),
  );
}

interface CpuUse {
  server: number;
  client: number;
  other: number;
}

export function formatCpuTable(
  rows: Array<{ row: string; reference?: CpuUse; slipway?: CpuUse }>,
  labels = { reference: 'Distribution', slipway: 'Slipway' },
): string {
  const f = (v: number | undefined) => (v === undefined ? '–' : v.toFixed(2));
  const body = rows.map((r) => [
    r.row,
    f(r.reference?.server),
    f(r.reference?.client),
    f(r.reference?.other),
    f(r.slipway?.server),
    f(r.slipway?.client),
    f(r.slipway?.other),
  ]);
  return table(
    ['Row', labels.reference, 'client', 'other', labels.slipway, 'client', 'other'],
    body,
    new Set([1, 2, 3, 4, 5, 6]),
  );
}

// ── the pull-through bench: a baseline and two caches per row ──────────────────────────────────

export type CacheTarget =
  /** Slipway / baseline must be at least `value`. */
  | { kind: 'baseline-ratio-min'; value: number; text: string }
  /** Slipway's own figure must be exactly `value` (a count). */
  | { kind: 'equals'; value: number; text: string };

/**
 * One row of the pull-through bench: the same measurement through Slipway's cache and through
 * Distribution's (the "reference"), next to a baseline without a cache in the way (a direct GET from
 * the upstream, or a repository pushed to Slipway).
 */
export interface CacheRow {
  group: string;
  label: string;
  unit: string;
  /** What the baseline is: "direct", "local repo"; empty when the row has none. */
  baselineLabel: string;
  baseline: number | undefined;
  reference: number | undefined;
  slipway: number | undefined;
  target?: CacheTarget;
  digits: number;
  lowerIsBetter?: boolean;
  result?: 'PASS' | 'MISS' | '';
}

const ratioOf = (a: number | undefined, b: number | undefined) =>
  a !== undefined && b !== undefined && b > 0 ? a / b : undefined;

export function evaluateCacheRow(row: CacheRow): CacheRow {
  const { target, slipway } = row;
  let result: CacheRow['result'] = '';
  if (target && slipway !== undefined) {
    if (target.kind === 'equals') result = slipway === target.value ? 'PASS' : 'MISS';
    else {
      const ratio = ratioOf(slipway, row.baseline);
      if (ratio !== undefined) result = ratio >= target.value ? 'PASS' : 'MISS';
    }
  }
  row.result = result;
  return row;
}

/** A Markdown table: row, unit, baseline, both caches, the ratios among them, target, PASS/MISS. */
export function formatCacheTable(rows: CacheRow[]): string {
  const ratio = (a: number | undefined, b: number | undefined) => {
    const r = ratioOf(a, b);
    return r === undefined ? '' : `${r.toFixed(2)}×`;
  };
  const body = rows.map((row) => {
    evaluateCacheRow(row);
    return [
      row.label,
      row.unit,
      row.baselineLabel,
      row.baseline === undefined ? '' : format(row.baseline, row.digits),
      format(row.reference, row.digits),
      format(row.slipway, row.digits),
      ratio(row.slipway, row.baseline),
      ratio(row.reference, row.baseline),
      ratio(row.slipway, row.reference),
      row.target?.text ?? '',
      row.result ?? '',
    ];
  });
  return table(
    [
      'Row',
      'Unit',
      'Baseline',
      '',
      'Distribution',
      'Slipway',
      'Slipway/Base',
      'Distr./Base',
      'Slipway/Distr.',
      'Target',
      'Result',
    ],
    body,
    new Set([3, 4, 5, 6, 7, 8]),
  );
}

/** Average cores busy along one path while a row was measured. */
export interface PathCpu {
  /** The cache (none for a direct GET). */
  cache?: number;
  /** The upstream registry and the counting proxy in front of it. */
  upstream: number;
  client: number;
  other: number;
}

export interface CpuLine {
  row: string;
  path: string;
  cpu: PathCpu;
}

/** Cores busy per row and path: the cache, the upstream side (registry and counting proxy), client, rest. */
export function formatCacheCpuTable(lines: CpuLine[]): string {
  const f = (v: number | undefined) => (v === undefined ? '–' : v.toFixed(2));
  return table(
    ['Row', 'Path', 'cache', 'upstream side', 'client', 'other'],
    lines.map((l) => [l.row, l.path, f(l.cpu.cache), f(l.cpu.upstream), f(l.cpu.client), f(l.cpu.other)]),
    new Set([2, 3, 4, 5]),
  );
}
