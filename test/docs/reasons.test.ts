// docs/reasons.md lists every reason code of src/pipeline/reasons.ts (and the reload codes),
// with the same status, alert flag and layer; nothing more, nothing less. The doc's tables are
// parsed as tables, row by row: a code mentioned in passing does not count.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { RELOAD_REASONS } from '../../src/audit/event.ts';
import { REASONS } from '../../src/pipeline/reasons.ts';
import { tableUnder } from '../helpers/markdown.ts';

const DOC = join(import.meta.dirname, '..', '..', 'docs', 'reasons.md');

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
