// Draining on SIGTERM, with a client that uploads its body slowly over about five seconds:
// readiness turns false, the listener closes, the upload completes and is forwarded, exit 0.
// A second SIGTERM exits at once; `shutdown_timeout` bounds the wait.
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import t, { type Test } from 'tap';
import { baseConfig, startGuard, type GuardProcess } from '../helpers/guard.ts';
import { makePki, type CertFiles } from '../helpers/pki.ts';
import { probeTls, waitFor } from '../helpers/reload.ts';
import { startBackup } from '../helpers/upstream.ts';

const pki = makePki([]);
const calgary = pki.client('calgary-01');
const CHUNKS = 10;
const CHUNK_INTERVAL_MS = 500;

interface Upload {
  /** Body chunks written so far. */
  written(): number;
  readonly body: Buffer;
  readonly done: Promise<{ status: number; connection: string | undefined }>;
}

/** POSTs a JSON body in CHUNKS pieces, one every CHUNK_INTERVAL_MS (about five seconds in all). */
function slowUpload(port: number, cert: CertFiles): Upload {
  const entries = Array.from({ length: CHUNKS * 4 }, (_, i) => ({ id: i, data: 'x'.repeat(40) }));
  const body = Buffer.from(JSON.stringify({ source_pop: 'calgary-01', entries, timestamp: Math.floor(Date.now() / 1000) }));
  const size = Math.ceil(body.length / CHUNKS);
  let written = 0;
  const done = new Promise<{ status: number; connection: string | undefined }>((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port, servername: 'localhost', method: 'POST', path: '/api/replication/apply',
      ca: readFileSync(pki.caFile), cert: readFileSync(cert.cert), key: readFileSync(cert.key), agent: false,
      headers: { 'content-type': 'application/json', 'content-length': body.length }, timeout: 30_000,
    }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    const next = () => {
      if (req.destroyed) return;
      req.write(body.subarray(written * size, (written + 1) * size));
      written += 1;
      if (written < CHUNKS) setTimeout(next, CHUNK_INTERVAL_MS);
      else req.end();
    };
    next();
  });
  done.catch(() => undefined);
  return { written: () => written, body, done };
}

const readyz = async (guard: GuardProcess) => {
  try {
    return (await fetch(`http://127.0.0.1:${guard.adminPort}/readyz`)).status;
  } catch {
    return 0;
  }
};

const config = (backupUrl: string, shutdownTimeout: string) => baseConfig(pki, backupUrl, {
  limits: { request_timeout: '30s' },
  shutdown_timeout: shutdownTimeout,
});

t.test('SIGTERM during a 5-second upload: not ready, listener closed, the upload completes, exit 0', async (t) => {
  const backup = await startBackup();
  t.teardown(() => backup.stop());
  const guard = await startGuard(config(backup.url, '20s'));
  t.equal(await readyz(guard), 200, 'ready');

  const upload = slowUpload(guard.port, calgary);
  t.ok(await waitFor(() => upload.written() >= 2), 'the upload is under way');
  const exited = new Promise<number | null>((resolve) => guard.child.once('exit', (code) => resolve(code)));
  guard.child.kill('SIGTERM');

  t.ok(await waitFor(() => guard.operational().some((l) => l.message?.startsWith('draining'))), 'draining');
  t.equal(await readyz(guard), 503, 'readiness is false while draining');
  t.same(await probeTls(guard.port, pki.caFile, calgary), { ok: false, error: 'ECONNREFUSED' }, 'new connections are refused: the listener is closed');
  t.ok(upload.written() < CHUNKS, 'all of this while the upload was still sending');

  const reply = await upload.done;
  t.same(reply, { status: 200, connection: 'close' }, 'the upload completed, told that the connection closes');
  t.equal(await exited, 0, 'exit code 0');
  const received = backup.received();
  t.equal(received.length, 1);
  t.ok(received[0]!.body.equals(upload.body), 'the backup got the whole body');
  t.same(guard.audit().filter((e) => e.event.action === 'replication-request').map((e) => e.event.reason), ['FORWARDED'], 'its audit event was written before exit');
});

/** A guard and backup, a slow upload under way, then SIGTERM; `exited` says how far the upload got. */
async function uploadThenSigterm(t: Test, shutdownTimeout: string) {
  const backup = await startBackup();
  t.teardown(() => backup.stop());
  const guard = await startGuard(config(backup.url, shutdownTimeout));
  const upload = slowUpload(guard.port, calgary);
  t.ok(await waitFor(() => upload.written() >= 2), 'the upload is under way');
  const exited = new Promise<{ code: number | null; exitedAt: number }>((resolve) => guard.child.once('exit', (code) => resolve({ code, exitedAt: upload.written() })));
  guard.child.kill('SIGTERM');
  return { backup, guard, upload, exited };
}

t.test('a second SIGTERM exits at once', async (t) => {
  const { backup, guard, upload, exited } = await uploadThenSigterm(t, '20s');
  t.ok(await waitFor(() => guard.operational().some((l) => l.message?.startsWith('draining'))), 'draining');
  guard.child.kill('SIGTERM');
  const { code, exitedAt } = await exited;
  t.equal(code, 0, 'exited');
  t.ok(exitedAt < CHUNKS, `without waiting for the upload (${exitedAt} of ${CHUNKS} chunks sent)`);
  await t.rejects(upload.done, 'the upload was cut');
  t.equal(backup.received().length, 0, 'nothing half-received was forwarded');
});

t.test('shutdown_timeout bounds the drain', async (t) => {
  const { backup, guard, upload, exited } = await uploadThenSigterm(t, '1s');
  const { code, exitedAt } = await exited;
  t.equal(code, 0, 'exit code 0 after the deadline');
  t.ok(exitedAt < CHUNKS, `the upload was still sending (${exitedAt} of ${CHUNKS} chunks)`);
  await t.rejects(upload.done, 'and was cut at the deadline');
  t.ok(guard.operational().some((l) => l.message === 'drain deadline reached: closing the remaining connections'), 'the deadline is logged');
  t.equal(backup.received().length, 0);
});
