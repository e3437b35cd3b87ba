// The audit trail across process signals, through the real program: SIGUSR2 reopens audit.file
// after logrotate renamed it, and SIGTERM under load loses no event of a request the client saw
// finish (asynchronous writes are flushed before exit).
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, renameSync, statSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { call } from '../helpers/client.ts';
import { baseConfig, startGuard, type GuardProcess } from '../helpers/guard.ts';
import { makePki } from '../helpers/pki.ts';
import { startBackup } from '../helpers/upstream.ts';
import { until } from '../helpers/wait.ts';

const pki = makePki(['calgary-01']);
const good = pki.client('calgary-01');

const readEvents = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);

/** Waits for the process to exit and for its output to be fully read. */
async function exited(guard: GuardProcess): Promise<number | null> {
  const code = guard.child.exitCode ?? ((await once(guard.child, 'exit')) as [number | null])[0];
  if (!guard.child.stdout!.readableEnded) await once(guard.child.stdout!, 'end');
  return code;
}

t.test('SIGUSR2 reopens audit.file: logrotate renames, signals, and later events go to the new file', async (t) => {
  const backup = await startBackup();
  const file = join(mkdtempSync(join(tmpdir(), 'replguard-rotate-')), 'audit.ndjson');
  const guard = await startGuard(baseConfig(pki, backup.url, { audit: { stdout: false, file } }));
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });
  t.equal(statSync(file).mode & 0o077, 0o040 & ~process.umask(), 'group may read, others nothing');

  const ids = async (n: number) => {
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(String((await call(guard.port, pki.caFile, { cert: good })).headers['x-replguard-request-id']));
    return out;
  };
  const before = await ids(3);
  await until(() => readEvents(file).length === 3, 'three events in the file');
  renameSync(file, `${file}.1`);
  guard.child.kill('SIGUSR2');
  await until(() => guard.operational().some((r) => r.message === 'audit file reopened'), 'the reopen');
  const after = await ids(2);
  await until(() => readEvents(file).length === 2, 'two events in the new file');

  t.same(readEvents(`${file}.1`).map((e) => e.replguard.request_id), before, 'the rotated file holds the earlier events');
  t.same(readEvents(file).map((e) => e.replguard.request_id), after, 'the new file holds the later ones');
  t.equal(guard.audit().length, 0, 'audit.stdout: false writes nothing to stdout');
  t.equal(guard.child.exitCode, null, 'still serving');
});

t.test('SIGTERM under load: every response the clients received has its audit event, on stdout and in the file', async (t) => {
  const backup = await startBackup({ delayMs: 20 });
  const file = join(mkdtempSync(join(tmpdir(), 'replguard-term-')), 'audit.ndjson');
  const guard = await startGuard(baseConfig(pki, backup.url, { audit: { stdout: true, file } }));
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  t.teardown(async () => {
    agent.destroy();
    await guard.stop();
    await backup.stop();
  });

  const TOTAL = 400;
  const TERM_AFTER = 100;
  const answered: string[] = [];
  let failed = 0;
  let signalled = false;
  await Promise.all(Array.from({ length: TOTAL }, async () => {
    try {
      const reply = await call(guard.port, pki.caFile, { cert: good, agent });
      answered.push(String(reply.headers['x-replguard-request-id']));
    } catch {
      failed += 1; // refused after the listener closed: no response, so no promise about an event
    }
    if (!signalled && answered.length >= TERM_AFTER) {
      signalled = true;
      guard.child.kill('SIGTERM');
    }
  }));
  t.equal(await exited(guard), 0, 'clean exit after draining');

  t.ok(answered.length >= TERM_AFTER, `${answered.length} responses, ${failed} refused`);
  t.equal(answered.length + failed, TOTAL);
  const stdoutIds = guard.audit().map((e) => e.replguard.request_id);
  const fileIds = readEvents(file).map((e) => e.replguard.request_id);
  t.equal(new Set(stdoutIds).size, stdoutIds.length, 'no request has two events');
  const missing = (ids: string[]) => answered.filter((id) => !ids.includes(id));
  t.same(missing(stdoutIds), [], 'stdout: no event missing');
  t.same(missing(fileIds), [], 'audit.file: no event missing');
  t.same(fileIds, stdoutIds, 'both destinations hold the same events');
  t.ok(guard.operational().some((r) => r.message === 'guard stopped'));
});
