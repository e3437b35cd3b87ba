import { existsSync, mkdtempSync, readFileSync, renameSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { createAuditLog } from '../../../src/audit/audit-log.ts';
import { reloadEvent } from '../../../src/audit/event.ts';
import { ConfigError } from '../../../src/config/errors.ts';

const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);

/** Polls (bounded) until `check` holds: the file stream writes asynchronously. */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await sleep(10);
  }
  throw new Error(`timed out waiting for ${what}`);
}

t.test('file destination: created 0640, appended, reopened by name after a rename (logrotate)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'replguard-audit-'));
  const file = join(dir, 'audit.ndjson');
  const log = createAuditLog({ stdout: false, file });
  await log.ready();
  t.equal(statSync(file).mode & 0o777, 0o640 & ~process.umask());
  log.write(reloadEvent('success', 'one', undefined));
  log.flush();
  t.same(lines(file).map((e) => e.replguard.detail), ['one']);

  renameSync(file, `${file}.1`);
  log.write(reloadEvent('success', 'two', undefined)); // still the renamed file: not reopened yet
  log.flush();
  log.reopen();
  await until(() => existsSync(file), 'the new file');
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
  t.doesNotThrow(() => createAuditLog({ stdout: true }).reopen());
});
