// docs/security.md answers every finding (1-16) and recommendation (1-10) of the review, once,
// with a control, a proof and a status of the documented kinds; every test file it cites exists.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { tableUnder } from '../helpers/markdown.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const markdown = readFileSync(join(ROOT, 'docs', 'security.md'), 'utf8');
const STATUS = /\*\*(done|not applicable|not planned|(issue \d+( and issue \d+)?|packaging work), in progress)\*\*/;

for (const [heading, count] of [['Findings', 16], ['Recommendations', 10]] as const) {
  t.test(`${heading}: every item of the review, once, with a control, a proof and a status`, async (t) => {
    const rows = tableUnder(markdown, heading);
    t.same(rows.map((r) => Number(r['#'])), Array.from({ length: count }, (_, i) => i + 1));
    for (const row of rows) {
      t.ok(row.Control && row.Control.length > 20, `${heading} ${row['#']}: control`);
      t.ok(row.Proof, `${heading} ${row['#']}: proof`);
      t.match(row.Status, STATUS, `${heading} ${row['#']}: status`);
      if (/\*\*done\*\*/.test(row.Status!) && !/not applicable/.test(row.Status!)) {
        t.match(row.Proof, /`test\//, `${heading} ${row['#']}: a done row names a test`);
      }
    }
  });
}

t.test('every cited test file exists', async (t) => {
  const cited = [...new Set([...markdown.matchAll(/`(test\/[^`*]+\.test\.ts)`/g)].map((m) => m[1]!))];
  t.ok(cited.length >= 8, `${cited.length} test files cited`);
  for (const file of cited) t.ok(existsSync(join(ROOT, file)), file);
});
