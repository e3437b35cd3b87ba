// Conformance smoke for Deno 2 (node:test + node:assert: tap does not run under Deno).
// The guard started by `deno run` from src/ accepts an mTLS request from an authorised POP,
// forwards it to the demo backup, and refuses a client without a certificate.
// Run: npm run test:deno (deno test discovers *_test.ts; tap ignores them)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { writeDevPki } from '../../src/cli/dev-pki.ts';

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

function firstLine(child: ChildProcess, stream: 'stdout' | 'stderr', match: (line: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: child[stream]! });
    rl.on('line', (line) => {
      if (match(line)) resolve(line);
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}`)));
  });
}

function post(port: number, ca: Buffer, cert?: { cert: Buffer; key: Buffer }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ source_pop: 'calgary-01', entries: [{ id: 1 }] });
    const req = request({ host: '127.0.0.1', port, servername: 'localhost', method: 'POST', path: '/api/replication/apply', ca, ...cert, agent: false,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('deno: mTLS through the guard run from src/', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'replguard-deno-'));
  const pki = join(dir, 'pki');
  writeDevPki(pki, ['calgary-01']);
  const backup = spawn(process.execPath, ['run', '-A', join(ROOT, 'demo', 'backup.mjs'), '--port', '0', '--record', join(dir, 'rec.ndjson')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const upstreamPort = (JSON.parse(await firstLine(backup, 'stdout', () => true)) as { listening: { port: number } }).listening.port;
  const config = join(dir, 'replguard.yaml');
  writeFileSync(config, [
    'pop_id: zurich-01', 'role: backup', 'listen: { host: 127.0.0.1, port: 0 }',
    `tls: { cert_file: ${pki}/server.crt, key_file: ${pki}/server.key, client_ca_file: ${pki}/ca.crt }`,
    `upstream: { url: "http://127.0.0.1:${upstreamPort}" }`, 'routes: [ { method: POST, path: /api/replication/apply } ]',
    'peers: [ { id: calgary-01, cert: { cn: calgary-01 } } ]', 'admin: { host: 127.0.0.1, port: 0 }', '',
  ].join('\n'));
  const guard = spawn(process.execPath, ['run', '-A', join(ROOT, 'src', 'main.ts'), 'serve', '-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  const audit: string[] = [];
  const operational: string[] = [];
  createInterface({ input: guard.stdout! }).on('line', (l) => audit.push(l));
  createInterface({ input: guard.stderr! }).on('line', (l) => operational.push(l));
  const exited = new Promise<void>((resolve) => guard.once('exit', () => resolve()));
  try {
    const ready = JSON.parse(await firstLine(guard, 'stderr', (l) => l.includes('"ready"'))) as { port: number };
    const ca = readFileSync(join(pki, 'ca.crt'));
    const ok = await post(ready.port, ca, { cert: readFileSync(join(pki, 'calgary-01.crt')), key: readFileSync(join(pki, 'calgary-01.key')) });
    assert.equal(ok.status, 200);
    assert.equal(JSON.parse(ok.body).applied, 1);
    const received = readFileSync(join(dir, 'rec.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(received.length, 1);
    assert.equal(received[0].headers['x-replguard-source-pop'], 'calgary-01');
    await assert.rejects(post(ready.port, ca), 'no client certificate: refused');
    await new Promise((r) => setTimeout(r, 200));
    const reasons = audit.map((l) => JSON.parse(l).event.reason);
    assert.deepEqual(reasons, ['FORWARDED', 'TLS_CLIENT_CERT_MISSING']);
  } finally {
    guard.kill('SIGTERM');
    backup.kill('SIGTERM');
  }
  await exited;
  // Deno's child_process reports a child we signalled as killed whatever its exit code,
  // so the drain is checked by its own log line (run directly, the process exits 0).
  assert.ok(operational.some((l) => l.includes('"guard stopped"')), 'drained on SIGTERM');
});
