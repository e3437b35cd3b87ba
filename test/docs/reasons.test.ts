// docs/reasons.md lists every reason code of src/pipeline/reasons.ts (and the reload codes),
// with the same status, alert flag and layer; nothing more, nothing less. The doc's tables are
// parsed as tables, row by row: a code mentioned in passing does not count.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { RELOAD_REASONS } from '../../src/audit/event.ts';
import { REASONS } from '../../src/pipeline/reasons.ts';

const DOC = join(import.meta.dirname, '..', '..', 'docs', 'reasons.md');

/** The markdown table under the `## heading`, as rows of cells keyed by the header names. */
function tableUnder(markdown: string, heading: string): Array<Record<string, string>> {
  const lines = markdown.split('\n');
  const start = lines.indexOf(`## ${heading}`);
  if (start === -1) throw new Error(`no "## ${heading}" section`);
  const end = lines.findIndex((l, i) => i > start && l.startsWith('## '));
  const section = lines.slice(start + 1, end === -1 ? undefined : end);
  const tableLines = section.filter((l) => l.startsWith('|'));
  if (tableLines.length < 2) throw new Error(`no table under "${heading}"`);
  const cells = (line: string) => {
    if (!line.endsWith('|')) throw new Error(`table row does not end with "|": ${line}`);
    return line.slice(1, -1).split('|').map((c) => c.trim());
  };
  const [header, rule, ...rows] = tableLines;
  const names = cells(header!);
  if (!cells(rule!).every((c) => /^:?-{3,}:?$/.test(c))) throw new Error(`second row of "${heading}" is not a rule`);
  return rows.map((line) => {
    const values = cells(line);
    if (values.length !== names.length) throw new Error(`row has ${values.length} cells, header ${names.length}: ${line}`);
    return Object.fromEntries(names.map((n, i) => [n, values[i]!]));
  });
}

function code(cell: string): string {
  const m = /^`([A-Z][A-Z0-9_]*)`$/.exec(cell);
  if (!m) throw new Error(`"${cell}" is not a code in backticks`);
  return m[1]!;
}

const markdown = readFileSync(DOC, 'utf8');

t.test('every request reason code is documented with its status, alert flag and layer', async (t) => {
  const rows = tableUnder(markdown, 'Request outcomes');
  const documented = rows.map((r) => code(r.Code!));
  t.same([...documented].sort(), Object.keys(REASONS).sort(), 'the same set of codes');
  t.equal(new Set(documented).size, documented.length, 'each code once');
  for (const row of rows) {
    const c = code(row.Code!);
    const entry = REASONS[c as keyof typeof REASONS] as { status: number; alert: boolean; connection?: boolean } | undefined;
    if (!entry) continue; // reported by the set comparison above
    t.equal(row.Status, String(entry.status), `${c} status`);
    t.equal(row.Alert, entry.alert ? 'yes' : 'no', `${c} alert`);
    t.equal(row.Layer, entry.connection ? 'TLS' : 'HTTP', `${c} layer`);
    t.ok(row.Meaning && row.Meaning.length > 10, `${c} has a meaning`);
  }
});

t.test('every event code that is not a request is documented', async (t) => {
  const rows = tableUnder(markdown, 'Events that are not requests');
  t.same(rows.map((r) => code(r.Code!)).sort(), Object.keys(RELOAD_REASONS).sort());
  for (const row of rows) {
    const c = code(row.Code!) as keyof typeof RELOAD_REASONS;
    t.equal(row.Alert, RELOAD_REASONS[c]?.alert ? 'yes' : 'no', `${c} alert`);
  }
});

t.test('the table parser refuses what it cannot read', async (t) => {
  t.throws(() => tableUnder('## A\n| Code |\n| --- |\n| `X` | extra |\n', 'A'));
  t.throws(() => tableUnder('## A\ntext only\n', 'A'));
  t.throws(() => code('X_Y'));
});
