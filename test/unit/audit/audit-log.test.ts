import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { createAuditLog } from '../../../src/audit/audit-log.ts';
import { reloadEvent } from '../../../src/audit/control-events.ts';
import { ConfigError } from '../../../src/config/errors.ts';
import { until } from '../../helpers/wait.ts';

const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);

t.test('file destination: created 0640, appended, reopened by name after a rename (logrotate)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'replguard-audit-'));
  const file = join(dir, 'audit.ndjson');
  const log = createAuditLog({ stdout: false, file });
  await log.ready();
  t.equal(statSync(file).mode & 0o777, 0o640 & ~process.umask());
  log.write(reloadEvent('success', 'one', undefined));
  log.flush(); // the first write may already be in the thread pool: flush() does not wait for it
  await until(() => lines(file).length === 1, 'the first event');
  t.same(lines(file).map((e) => e.replguard.detail), ['one']);

  renameSync(file, `${file}.1`);
  log.write(reloadEvent('success', 'two', undefined)); // still the renamed file: not reopened yet
  log.flush();
  await log.reopen();
  t.ok(existsSync(file), 'the new file is open');
  log.write(reloadEvent('success', 'three', undefined));
  log.flush();
  await until(() => lines(file).length === 1, 'the event in the new file');
  t.same(lines(`${file}.1`).map((e) => e.replguard.detail), ['one', 'two'], 'the old file keeps what was written before the signal');
  t.same(lines(file).map((e) => e.replguard.detail), ['three'], 'later events go to the new file');
});

t.test('a file that cannot be opened is an operator error at start-up', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'replguard-audit-'));
  // A folder in place of the file: refused whoever runs the test (root included).
  t.throws(() => createAuditLog({ stdout: false, file: dir }), ConfigError);
});

t.test('reopen without a file does nothing', async (t) => {
  await t.resolves(createAuditLog({ stdout: true }).reopen());
});

t.test('a reopen that fails is reported and the old file keeps the events', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'replguard-audit-'));
  const file = join(dir, 'audit.ndjson');
  const errors: string[] = [];
  const log = createAuditLog({ stdout: false, file }, { onError: (_err, destination) => errors.push(destination) });
  await log.ready();
  renameSync(file, `${file}.1`);
  mkdirSync(file); // logrotate's new name is taken by a folder: opening it fails
  await t.rejects(log.reopen());
  t.same(errors, ['file'], 'counted and logged through onError');
  log.write(reloadEvent('success', 'after', undefined));
  log.flush();
  await until(() => lines(`${file}.1`).length === 1, 'the event in the old file');
  t.same(lines(`${file}.1`).map((e) => e.replguard.detail), ['after']);
});

t.test('close() returns once every event written so far is in the file, in order; later writes go nowhere', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'replguard-audit-'));
  const file = join(dir, 'audit.ndjson');
  const errors: string[] = [];
  const log = createAuditLog({ stdout: false, file }, { onError: (err) => errors.push(err.message) });
  await log.ready();
  const sent = Array.from({ length: 500 }, (_, i) => `event-${i}`);
  for (const detail of sent) log.write(reloadEvent('success', detail, undefined));
  await log.close();
  t.same(lines(file).map((e) => e.replguard.detail), sent, 'nothing lost or reordered, read right after close');
  t.doesNotThrow(() => log.write(reloadEvent('success', 'late', undefined)), 'a late write does not throw');
  t.same(errors, ['audit event written after the audit log was closed'], 'and is reported');
  t.equal(lines(file).length, sent.length);
});
