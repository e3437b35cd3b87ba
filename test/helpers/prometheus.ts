/**
 * A strict parser for the Prometheus text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/), for tests: any line it cannot
 * account for is an error, not skipped. prom-client writes this format but ships no parser.
 * Checks beyond the grammar: TYPE before a family's samples, a family's lines contiguous, no
 * duplicate series, histogram buckets cumulative with `+Inf` equal to `_count`.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help: string | undefined;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

/** Prometheus reads values with Go's strconv.ParseFloat: special values in any case (prom-client writes "Nan"). */
function parseValue(text: string, line: number): number {
  const special = /^([-+]?)(nan|inf|infinity)$/i.exec(text);
  if (special) {
    if (special[2]!.toLowerCase() === 'nan') return Number.NaN;
    return special[1] === '-' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  }
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`line ${line}: "${text}" is not a float`);
  return Number(text);
}

function unescapeLabel(text: string, allowQuote: boolean, line: number): string {
  return text.replace(/\\(.)/g, (_, c: string) => {
    if (c === '\\') return '\\';
    if (c === 'n') return '\n';
    if (c === '"' && allowQuote) return '"';
    throw new Error(`line ${line}: bad escape \\${c}`);
  });
}

function parseSample(text: string, line: number): Sample {
  const nameMatch = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(text);
  if (!nameMatch) throw new Error(`line ${line}: no metric name in "${text}"`);
  const name = nameMatch[1]!;
  let i = name.length;
  const labels: Record<string, string> = {};
  if (text[i] === '{') {
    i += 1;
    while (text[i] !== '}') {
      const m = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"/.exec(text.slice(i));
      if (!m) throw new Error(`line ${line}: bad label at "${text.slice(i)}"`);
      if (m[1]! in labels) throw new Error(`line ${line}: label ${m[1]} repeated`);
      labels[m[1]!] = unescapeLabel(m[2]!, true, line);
      i += m[0].length;
      if (text[i] === ',') i += 1;
      else if (text[i] !== '}') throw new Error(`line ${line}: expected "," or "}" at "${text.slice(i)}"`);
    }
    i += 1;
  }
  const rest = text.slice(i);
  const m = /^ +(\S+)(?: +(-?\d+))?$/.exec(rest);
  if (!m) throw new Error(`line ${line}: bad value part "${rest}"`);
  return { name, labels, value: parseValue(m[1]!, line) };
}

function familyOf(sample: string, families: Map<string, Family>): Family | undefined {
  const exact = families.get(sample);
  if (exact) return exact;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!sample.endsWith(suffix)) continue;
    const f = families.get(sample.slice(0, -suffix.length));
    if (f && (f.type === 'histogram' || (f.type === 'summary' && suffix !== '_bucket'))) return f;
  }
  return undefined;
}

export function parsePrometheusText(text: string): Map<string, Family> {
  if (text.length > 0 && !text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  const families = new Map<string, Family>();
  const finished = new Set<string>();
  const seen = new Set<string>();
  let current: Family | undefined;
  const lines = text.split('\n');
  lines.pop();
  lines.forEach((raw, index) => {
    const line = index + 1;
    if (raw.trim() === '') return;
    if (raw.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(raw);
      if (!m) return; // a plain comment
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      if (!METRIC_NAME.test(name)) throw new Error(`line ${line}: bad metric name ${name}`);
      if (finished.has(name)) throw new Error(`line ${line}: ${name} appears again after other families`);
      let family = families.get(name);
      if (!family) {
        family = { name, type: 'untyped', help: undefined, samples: [] };
        families.set(name, family);
      }
      if (current && current !== family) finished.add(current.name);
      current = family;
      if (kind === 'HELP') {
        if (family.help !== undefined) throw new Error(`line ${line}: second HELP for ${name}`);
        family.help = unescapeLabel(rest, false, line);
      } else {
        if (!TYPES.has(rest)) throw new Error(`line ${line}: unknown type ${rest}`);
        if (family.samples.length > 0) throw new Error(`line ${line}: TYPE for ${name} after its samples`);
        family.type = rest as Family['type'];
      }
      return;
    }
    const sample = parseSample(raw, line);
    for (const l of Object.keys(sample.labels)) if (!LABEL_NAME.test(l)) throw new Error(`line ${line}: bad label name ${l}`);
    const family = familyOf(sample.name, families);
    if (!family) throw new Error(`line ${line}: ${sample.name} has no TYPE line before it`);
    if (finished.has(family.name)) throw new Error(`line ${line}: ${family.name} is not contiguous`);
    if (current !== family) {
      if (current) finished.add(current.name);
      current = family;
    }
    const key = `${sample.name}${JSON.stringify(Object.entries(sample.labels).sort())}`;
    if (seen.has(key)) throw new Error(`line ${line}: duplicate series ${key}`);
    seen.add(key);
    family.samples.push(sample);
  });
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
}

function checkHistogram(f: Family): void {
  const groups = new Map<string, Sample[]>();
  for (const s of f.samples) {
    if (s.name !== `${f.name}_bucket`) continue;
    const { le, ...rest } = s.labels;
    if (le === undefined) throw new Error(`${f.name}: bucket without le`);
    const k = JSON.stringify(Object.entries(rest).sort());
    groups.set(k, [...(groups.get(k) ?? []), s]);
  }
  for (const [k, buckets] of groups) {
    let prev = -1;
    let prevValue = 0;
    for (const b of buckets) {
      const le = parseValue(b.labels.le!, 0);
      if (le <= prev) throw new Error(`${f.name}${k}: buckets out of order`);
      if (b.value < prevValue) throw new Error(`${f.name}${k}: buckets not cumulative`);
      prev = le;
      prevValue = b.value;
    }
    const inf = buckets.at(-1)!;
    if (inf.labels.le !== '+Inf') throw new Error(`${f.name}${k}: no +Inf bucket`);
    const count = f.samples.find((s) => s.name === `${f.name}_count` && JSON.stringify(Object.entries(s.labels).sort()) === k);
    if (!count || count.value !== inf.value) throw new Error(`${f.name}${k}: _count differs from the +Inf bucket`);
  }
}

/** The value of the one sample of `name` whose labels include `labels`; 0 when there is none. */
export function sampleValue(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const family = familyOf(name, families);
  const matches = (family?.samples ?? []).filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (matches.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${matches.length} series`);
  return matches[0]?.value ?? 0;
}

/** The sum over every sample of `name` whose labels include `labels`. */
export function sampleSum(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const family = familyOf(name, families);
  return (family?.samples ?? [])
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}
