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
    // Kept alive: only SIGTERM's default ends it, which the sampler must give back.
    setInterval(() => undefined, 1000);
  `);
  // Through env -u NODE_OPTIONS: tap puts its process-info hook into every child's NODE_OPTIONS,
  // and that hook has a SIGTERM handler of its own (signal-exit), which would then own the exit
  // as a target's own handler does. The bench's targets run without it.
  const run = spawnSync('env', ['-u', 'NODE_OPTIONS', process.execPath, `--import=${join(BENCH, 'alloc-sample.mjs')}`, script], {
    cwd: dir, encoding: 'utf8', timeout: 20000, killSignal: 'SIGKILL',
  });
  t.equal(run.signal, 'SIGTERM', `a process without a SIGTERM handler of its own still ends at SIGTERM: ${run.stderr}`);
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
