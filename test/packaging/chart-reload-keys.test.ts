// The chart rolls the pods (checksum/replguard-config) for every config key except those a
// running guard applies live. Its list of live keys (helm/replguard/templates/_helpers.tpl,
// "replguard.liveConfigKeys") must never name a key the guard keeps until a restart
// (src/guard/reload.ts RESTART_ONLY), and each must be documented as live in docs/operations.md.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { configSchema } from '../../src/config/schema.ts';
import { RESTART_ONLY } from '../../src/guard/reload.ts';

const root = join(import.meta.dirname, '..', '..');
const helpers = readFileSync(join(root, 'helm', 'replguard', 'templates', '_helpers.tpl'), 'utf8');
const m = /\{\{- define "replguard\.liveConfigKeys" -\}\}\n([^\n{]+)\n\{\{- end \}\}/.exec(helpers);

t.test('the chart names its live config keys in one place', async (t) => {
  t.ok(m, 'replguard.liveConfigKeys is defined on one line');
});

const live = (m?.[1] ?? '').trim().split(/\s+/);

t.test('no live key is one the guard keeps until a restart', async (t) => {
  for (const key of live) {
    t.ok(key in configSchema.shape, `${key} is a top-level config key`);
    t.notOk((RESTART_ONLY as readonly string[]).includes(key), `${key} is not restart-only`);
  }
  for (const key of RESTART_ONLY) t.notOk(live.includes(key), `${key} rolls the pods`);
});

t.test('each live key is in the "Changes live" column of docs/operations.md', async (t) => {
  const doc = readFileSync(join(root, 'docs', 'operations.md'), 'utf8');
  const table = doc.slice(doc.indexOf('| Changes live |'), doc.indexOf('\n\n', doc.indexOf('| Changes live |')));
  const liveColumn = table.split('\n').slice(2).map((row) => row.split('|')[1] ?? '').join(' ');
  for (const key of live) t.match(liveColumn, new RegExp(`\`${key}[\`.]`), `${key} is documented as live`);
});
