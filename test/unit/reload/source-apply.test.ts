// The reloadable source's install step and its one listener: an `apply` that throws refuses the
// reload like invalid material (nothing swapped, retried next time), and every attempt is told
// to `onReload` as ok, unchanged or failed.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import t from 'tap';
import { createOperationalLog } from '../../../src/log/operational.ts';
import { createReloadableSource, type ReloadReport } from '../../../src/reload/source.ts';

const quietLog = () => createOperationalLog('debug', new Writable({ write: (_c, _e, done) => done() }) as never);

t.test('apply refuses: the old value stays, the next trigger tries again', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'replguard-apply-')), 'material');
  writeFileSync(file, 'one');
  const installed: string[] = [];
  const reports: ReloadReport[] = [];
  let refuse = true;
  const source = createReloadableSource({
    name: 'test material',
    load: () => {
      const text = readFileSync(file, 'utf8');
      if (text === 'bad') throw new Error('unparsable');
      return { value: text, fingerprint: text };
    },
    apply: (next) => {
      if (refuse) throw new Error('the server refused it');
      installed.push(next);
    },
    paths: [file],
    log: quietLog(),
    onReload: (r) => reports.push(r),
    intervalMs: 0,
    watch: false,
  });
  t.teardown(() => source.close());

  writeFileSync(file, 'two');
  const refused = source.reload('SIGHUP');
  t.same(refused, { changed: false, error: 'the server refused it' });
  t.equal(source.current(), 'one', 'not swapped');
  t.equal(source.generation(), 0);

  refuse = false;
  t.same(source.reload('interval'), { changed: true }, 'the same new material goes in on the next trigger');
  t.equal(source.current(), 'two');
  t.same(installed, ['two']);

  t.same(source.reload('SIGHUP'), { changed: false }, 'unchanged');
  writeFileSync(file, 'bad');
  t.equal(source.reload('file change').changed, false);
  t.same(installed, ['two'], 'invalid material is never installed');

  t.same(reports.map((r) => [r.source, r.trigger, r.outcome]), [
    ['test material', 'SIGHUP', 'failed'],
    ['test material', 'interval', 'ok'],
    ['test material', 'SIGHUP', 'unchanged'],
    ['test material', 'file change', 'failed'],
  ]);
  t.equal(reports[3]!.error, 'unparsable');
});

t.test('a listener that throws does not break the reload', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'replguard-apply-')), 'material');
  writeFileSync(file, 'one');
  const source = createReloadableSource({
    name: 'test material',
    load: () => ({ value: readFileSync(file, 'utf8'), fingerprint: readFileSync(file, 'utf8') }),
    paths: [file],
    log: quietLog(),
    onReload: () => {
      throw new Error('listener bug');
    },
    intervalMs: 0,
    watch: false,
  });
  t.teardown(() => source.close());
  writeFileSync(file, 'two');
  t.same(source.reload('SIGHUP'), { changed: true });
  t.equal(source.current(), 'two');
});
