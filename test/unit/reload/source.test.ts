// The reloadable source: all-or-nothing swaps, the Kubernetes symlink swap seen by the
// directory watch, the timer as a fallback, and no crash on bad material.
import { mkdirSync, mkdtempSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import t from 'tap';
import { ConfigError } from '../../../src/config/errors.ts';
import { createOperationalLog } from '../../../src/log/operational.ts';
import { createReloadableSource } from '../../../src/reload/source.ts';

function memoryLog() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { log: createOperationalLog('info', stream as never), lines };
}

/** A loader that refuses content starting with "bad". */
const loader = (file: string) => () => {
  const text = readFileSync(file, 'utf8').trim();
  if (text.startsWith('bad')) throw new ConfigError([{ path: 'test', message: 'refused content' }]);
  return { value: text, fingerprint: text };
};

async function until(check: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return check();
}

t.test('explicit reload: swap, refusal keeps the old value, unchanged is not a swap', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'replguard-src-'));
  const file = join(dir, 'material');
  writeFileSync(file, 'one');
  const { log, lines } = memoryLog();
  const swaps: string[] = [];
  const source = createReloadableSource({ name: 'test material', load: loader(file), paths: [file], log, intervalMs: 0, watch: false, onSwap: (next, prev) => swaps.push(`${prev}->${next}`) });
  t.teardown(() => source.close());
  t.equal(source.current(), 'one');

  writeFileSync(file, 'two');
  t.same(source.reload('SIGHUP'), { changed: true });
  t.equal(source.current(), 'two');

  writeFileSync(file, 'bad material');
  const refused = source.reload('SIGHUP');
  t.equal(refused.changed, false);
  t.match(refused.error, /refused content/);
  t.equal(source.current(), 'two', 'the old material stays in force');
  t.ok(lines.some((l) => l.source === 'test material' && (l.log as { level: string }).level === 'error'), 'an operational error is logged');

  t.same(source.reload('SIGHUP'), { changed: false, error: refused.error }, 'still refused');
  writeFileSync(file, 'two');
  t.same(source.reload('interval'), { changed: false }, 'unchanged');
  t.same(swaps, ['one->two']);
  t.equal(source.generation(), 1);
});

t.test('the initial load throws: start-up fails with the problem', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'replguard-src-'));
  const file = join(dir, 'material');
  writeFileSync(file, 'bad');
  const { log } = memoryLog();
  t.throws(() => createReloadableSource({ name: 'x', load: loader(file), paths: [file], log, intervalMs: 0 }), ConfigError);
});

t.test('a Kubernetes Secret update (the ..data symlink swap) is seen by the directory watch', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'replguard-k8s-'));
  mkdirSync(join(dir, '..2026_01'));
  writeFileSync(join(dir, '..2026_01', 'token'), 'first');
  symlinkSync('..2026_01', join(dir, '..data'));
  symlinkSync('..data/token', join(dir, 'token'));
  const { log } = memoryLog();
  const source = createReloadableSource({ name: 'k8s', load: loader(join(dir, 'token')), paths: [join(dir, 'token')], log, intervalMs: 0, debounceMs: 20 });
  t.teardown(() => source.close());
  t.equal(source.current(), 'first');
  // What the kubelet does: a new timestamped folder, a temporary link, renamed over ..data.
  mkdirSync(join(dir, '..2026_02'));
  writeFileSync(join(dir, '..2026_02', 'token'), 'second');
  symlinkSync('..2026_02', join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  t.ok(await until(() => source.current() === 'second'), 'reloaded without a signal or a timer');
});

t.test('the timer is the fallback when no change event comes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'replguard-src-'));
  const file = join(dir, 'material');
  writeFileSync(file, 'one');
  const { log, lines } = memoryLog();
  const source = createReloadableSource({ name: 'timed', load: loader(file), paths: [file], log, intervalMs: 30, watch: false });
  t.teardown(() => source.close());
  writeFileSync(file, 'two');
  t.ok(await until(() => source.current() === 'two'), 'picked up by the interval');
  t.ok(lines.some((l) => l.trigger === 'interval' && l.changed === true));
  source.close();
  writeFileSync(file, 'three');
  await new Promise((r) => setTimeout(r, 120));
  t.equal(source.current(), 'two', 'closed: no more reloads');
});
