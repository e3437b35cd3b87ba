// SIGTERM drains: readiness turns false, in-flight requests finish, the process exits 0.
import t from 'tap';
import { makePki } from '../helpers/pki.ts';
import { startBackup } from '../helpers/upstream.ts';
import { baseConfig, startGuard } from '../helpers/guard.ts';
import { call } from '../helpers/client.ts';

t.test('SIGTERM during a slow request: it completes, then exit 0', async (t) => {
  const pki = makePki([]);
  const pop = pki.client('calgary-01');
  const backup = await startBackup({ delayMs: 1500 });
  const guard = await startGuard(baseConfig(pki, backup.url, { upstream: { url: backup.url, timeout: '10s' } }));
  t.teardown(() => backup.stop());

  const ready = await fetch(`http://127.0.0.1:${guard.adminPort}/readyz`);
  t.equal(ready.status, 200, 'ready while serving');

  const inflight = call(guard.port, pki.caFile, { cert: pop });
  await new Promise((r) => setTimeout(r, 300)); // the request is at the backup now
  const exited = guard.stop('SIGTERM');
  const reply = await inflight;
  t.equal(reply.status, 200, 'the in-flight request completed');
  t.equal(reply.headers.connection, 'close', 'and was told the connection closes');
  t.equal(await exited, 0, 'exit code 0');
  t.equal(backup.received().length, 1);
  t.ok(guard.audit().some((e) => e.event.reason === 'FORWARDED'), 'its audit event was flushed before exit');
});

t.test('not ready while draining', async (t) => {
  const pki = makePki([]);
  const pop = pki.client('calgary-01');
  const backup = await startBackup({ delayMs: 1500 });
  const guard = await startGuard(baseConfig(pki, backup.url, { upstream: { url: backup.url, timeout: '10s' } }));
  t.teardown(() => backup.stop());
  const inflight = call(guard.port, pki.caFile, { cert: pop });
  await new Promise((r) => setTimeout(r, 300));
  guard.child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  const ready = await fetch(`http://127.0.0.1:${guard.adminPort}/readyz`);
  t.equal(ready.status, 503, 'not ready while draining');
  t.equal((await inflight).status, 200);
  t.equal(await guard.stop(), 0);
});
