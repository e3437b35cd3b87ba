// docs/reasons.md lists every reason code of src/pipeline/reasons.ts (and the reload codes),
// with the same status, alert flag and layer; nothing more, nothing less. The doc's tables are
// parsed as tables, row by row: a code mentioned in passing does not count.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { REASONS, type Code } from '../../src/pipeline/reasons.ts';
import { tableUnder } from '../helpers/markdown.ts';

const DOC = join(import.meta.dirname, '..', '..', 'docs', 'reasons.md');

function code(cell: string): string {
  const m = /^`([A-Z][A-Z0-9_]*)`$/.exec(cell);
  if (!m) throw new Error(`"${cell}" is not a code in backticks`);
  return m[1]!;
}

const markdown = readFileSync(DOC, 'utf8');

const yesNo = (flag: boolean) => (flag ? 'yes' : 'no');
const codes = Object.keys(REASONS) as Code[];

t.test('every code with a status is documented with its kind, status, alert and ban columns', async (t) => {
  const rows = tableUnder(markdown, 'Request outcomes');
  const documented = rows.map((r) => code(r.Code!));
  t.same([...documented].sort(), codes.filter((c) => REASONS[c].kind !== 'event').sort(), 'the same set of codes');
  t.equal(new Set(documented).size, documented.length, 'each code once');
  for (const row of rows) {
    const c = code(row.Code!);
    const entry = REASONS[c as Code] as { kind: string; status?: number; alert: boolean; bans: boolean } | undefined;
    if (!entry) continue; // reported by the set comparison above
    t.equal(row.Kind, entry.kind, `${c} kind`);
    t.equal(row.Status, String(entry.status), `${c} status`);
    t.equal(row.Alert, yesNo(entry.alert), `${c} alert`);
    t.equal(row.Bans, yesNo(entry.bans), `${c} bans`);
    t.ok(row.Meaning && row.Meaning.length > 10, `${c} has a meaning`);
  }
});

t.test('every event code that is not a request is documented', async (t) => {
  const rows = tableUnder(markdown, 'Events that are not requests');
  t.same(rows.map((r) => code(r.Code!)).sort(), codes.filter((c) => REASONS[c].kind === 'event').sort());
  for (const row of rows) {
    const c = code(row.Code!) as Code;
    t.equal(row.Alert, yesNo(REASONS[c]?.alert ?? false), `${c} alert`);
  }
});

t.test('the table parser refuses what it cannot read', async (t) => {
  t.throws(() => tableUnder('## A\n| Code |\n| --- |\n| `X` | extra |\n', 'A'));
  t.throws(() => tableUnder('## A\ntext only\n', 'A'));
  t.throws(() => code('X_Y'));
});
