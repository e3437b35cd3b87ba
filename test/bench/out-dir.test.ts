// bench/run.mjs checks that --out can be written before it starts any target, so a bad folder
// costs a fraction of a second instead of a whole measured run whose results are then lost.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';

const runMjs = path.resolve(import.meta.dirname, '../../bench/run.mjs');

t.test('--out under a regular file is refused before any target starts', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'replguard-bench-out-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'not-a-folder');
  writeFileSync(file, '');
  const r = spawnSync(process.execPath, [runMjs, '--smoke', '--out', path.join(file, 'results')], { encoding: 'utf8', timeout: 60_000 });
  t.equal(r.status, 2, `exit code 2 (stderr: ${r.stderr})`);
  t.match(r.stderr, /--out .*not-a-folder.* is not a writable folder \(ENOTDIR\)/);
  t.notMatch(r.stdout + r.stderr, /preflight|target |rep 1/, 'no target was started or measured');
});
