// The audit log writes its configured destinations in batches (audit/audit-log.ts AUDIT_BATCH_MS):
// every event still arrives, in order, whether the batch is sent by its timer, by flush(), by
// close() or by the process exiting at once.
import { spawnSync } from 'node:child_process';
import { pbkdf2 } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import t from 'tap';
import { AUDIT_BATCH_MS, createAuditLog } from '../../../src/audit/audit-log.ts';
import { reloadEvent } from '../../../src/audit/control-events.ts';
import { until } from '../../helpers/wait.ts';

const details = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).replguard.detail) : []);
const auditFile = () => join(mkdtempSync(join(tmpdir(), 'replguard-audit-batch-')), 'audit.ndjson');

t.test('events written together arrive together once the batch is due, in order', async (t) => {
  const file = auditFile();
  const log = createAuditLog({ stdout: false, file });
  await log.ready();
  for (let i = 0; i < 50; i++) log.write(reloadEvent('success', `e${i}`, undefined));
  t.same(details(file), [], 'nothing is written while the batch waits');
  await until(() => details(file).length === 50, 'the batch');
  t.same(details(file), Array.from({ length: 50 }, (_, i) => `e${i}`));
  t.ok(AUDIT_BATCH_MS > 0 && AUDIT_BATCH_MS <= 10, `an event waits at most ${AUDIT_BATCH_MS} ms`);
  await log.close();
});

t.test('flush() writes the queued batch out synchronously', async (t) => {
  const file = auditFile();
  const log = createAuditLog({ stdout: false, file });
  await log.ready();
  // Every thread of the pool busy (libuv's default is 4): a write handed to it cannot have
  // happened by the time flush() returns, so only a write made on this thread passes.
  const busy = Array.from({ length: 4 }, () => new Promise((resolve) => pbkdf2('x', 'y', 200_000, 32, 'sha256', resolve)));
  log.write(reloadEvent('success', 'queued', undefined));
  log.flush();
  t.same(details(file), ['queued'], 'in the file as flush() returns');
  await Promise.all(busy);
  await log.close();
});

t.test('a process that exits right after writing loses no event', async (t) => {
  const file = auditFile();
  const src = pathToFileURL(join(import.meta.dirname, '..', '..', '..', 'src', 'audit')).href;
  const script = `
    const { createAuditLog } = await import('${src}/audit-log.ts');
    const { reloadEvent } = await import('${src}/control-events.ts');
    const log = createAuditLog({ stdout: false, file: ${JSON.stringify(file)} });
    await log.ready();
    for (let i = 0; i < 20; i++) log.write(reloadEvent('success', 'x' + i, undefined));
    process.exit(0);`;
  const run = spawnSync(process.execPath, [...process.execArgv, '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  t.equal(run.status, 0, run.stderr);
  t.same(details(file), Array.from({ length: 20 }, (_, i) => `x${i}`));
});
