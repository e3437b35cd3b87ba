// bench/alloc-sample.mjs and bench/alloc-top.mjs through a real process: the sampler preloaded
// into a Node process that allocates in a function of its own, the profile written at SIGTERM,
// and the summary charging the bytes to that function.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';

const BENCH = resolve(import.meta.dirname, '..', '..', 'bench');

t.test('the sampler keeps collected garbage in the profile, and the summary names who allocated it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'replguard-alloc-'));
  const script = join(dir, 'allocate.mjs');
  // About 64 MiB of short-lived arrays: all garbage by the time the profile is written.
  writeFileSync(script, `
    function allocateLots() {
      let kept = 0;
      for (let i = 0; i < 1 << 16; i++) kept += new Array(128).fill(i).length;
      return kept;
    }
    allocateLots();
    process.kill(process.pid, 'SIGTERM');
    setTimeout(() => process.exit(0), 200);
  `);
  const run = spawnSync(process.execPath, [`--import=${join(BENCH, 'alloc-sample.mjs')}`, script], { cwd: dir, encoding: 'utf8', timeout: 30000 });
  t.equal(run.status, 0, run.stderr);
  const files = readdirSync(join(dir, 'bench', '.run', 'alloc'));
  t.equal(files.length, 1, 'one profile, named by the pid');
  t.match(files[0], /^alloc-\d+\.heapprofile$/);
  const top = spawnSync(process.execPath, [join(BENCH, 'alloc-top.mjs'), join(dir, 'bench', '.run', 'alloc', files[0]!), '1000', '5'], { encoding: 'utf8', timeout: 30000 });
  t.equal(top.status, 0, top.stderr);
  const total = /([\d.]+) MiB allocated in all/.exec(top.stdout);
  t.ok(total && Number(total[1]) > 32, `garbage counted (${total?.[1]} MiB): the arrays were all collected before the profile was taken`);
  const first = top.stdout.split('\n').find((line) => /^\s+\d+ {2}/.test(line));
  t.match(first, /allocateLots/, 'the function that allocated most comes first');
  const bad = spawnSync(process.execPath, [join(BENCH, 'alloc-top.mjs'), files[0]!, 'zero'], { encoding: 'utf8' });
  t.equal(bad.status, 2, 'a request count that is not a number is refused');
});
