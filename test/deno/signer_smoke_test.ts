// Conformance smoke for Deno 2 (node:test + node:assert): the signer run by `deno run` from
// src/ delivers a plain-HTTP request of the primary through a guard (also under Deno) to the
// demo backup, and refuses a guard whose certificate is not the pinned one: the pin check
// lives in the TLS client's checkServerIdentity, which Deno's node:tls must honour.
// Run: npm run test:deno (deno test discovers *_test.ts; tap ignores them)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { writeDevPki } from '../../src/cli/dev-pki.ts';

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

function start(args: string[]): { child: ChildProcess; audit: string[]; ready: Promise<number>; exited: Promise<void> } {
  const child = spawn(process.execPath, ['run', '-A', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const audit: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => audit.push(l));
  const ready = new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stderr! }).on('line', (l) => {
      if (l.includes('"ready"')) resolve((JSON.parse(l) as { port: number }).port);
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}`)));
  });
  return { child, audit, ready, exited: new Promise((resolve) => child.once('exit', () => resolve())) };
}

function post(port: number, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/api/replication/apply', agent: false,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('deno: primary -> signer -> guard -> backup, and a pin mismatch refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'replguard-deno-signer-'));
  const pki = join(dir, 'pki');
  writeDevPki(pki, ['calgary-01']);
  const key = join(dir, 'signing.key');
  writeFileSync(key, `whsec_${randomBytes(32).toString('base64')}\n`);
  chmodSync(key, 0o600);
  const backup = spawn(process.execPath, ['run', '-A', join(ROOT, 'demo', 'backup.mjs'), '--port', '0', '--record', join(dir, 'rec.ndjson')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const upstreamPort = await new Promise<number>((resolve) => createInterface({ input: backup.stdout! }).once('line', (l) => resolve((JSON.parse(l) as { listening: { port: number } }).listening.port)));
  const guardConfig = join(dir, 'guard.yaml');
  writeFileSync(guardConfig, [
    'pop_id: zurich-01', 'role: backup', 'listen: { host: 127.0.0.1, port: 0 }',
    `tls: { cert_file: ${pki}/server.crt, key_file: ${pki}/server.key, client_ca_file: ${pki}/ca.crt }`,
    `upstream: { url: "http://127.0.0.1:${upstreamPort}" }`, 'routes: [ { method: POST, path: /api/replication/apply } ]',
    'auth: { methods: [mtls, signature] }',
    `peers: [ { id: calgary-01, cert: { cn: calgary-01 }, signing_keys: [${key}] } ]`, 'admin: { host: 127.0.0.1, port: 0 }', '',
  ].join('\n'));
  const guard = start([join(ROOT, 'src', 'main.ts'), 'serve', '-c', guardConfig]);
  const processes = [guard];
  try {
    const guardPort = await guard.ready;
    const signerConfig = (name: string, pins: string[]) => {
      const file = join(dir, `${name}.yaml`);
      writeFileSync(file, [
        'pop_id: calgary-01', 'role: primary', 'listen: { host: 127.0.0.1, port: 0 }', 'admin: { host: 127.0.0.1, port: 0 }',
        `backup: { id: zurich-01, url: "https://localhost:${guardPort}", ca_file: ${pki}/ca.crt, pin_sha256: ${JSON.stringify(pins)} }`,
        `client_tls: { cert_file: ${pki}/calgary-01.crt, key_file: ${pki}/calgary-01.key }`, `signing_keys: [${key}]`, 'retry: { max_retries: 0 }', '',
      ].join('\n'));
      return file;
    };
    const good = start([join(ROOT, 'src', 'main.ts'), 'serve', '-c', signerConfig('signer', [])]);
    const pinned = start([join(ROOT, 'src', 'main.ts'), 'serve', '-c', signerConfig('pinned', ['00'.repeat(32)])]);
    processes.push(good, pinned);
    const ok = await post(await good.ready, '{"entries":[{"id":1}]}');
    assert.equal(ok.status, 200, ok.body);
    const received = readFileSync(join(dir, 'rec.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(received.length, 1);
    assert.equal(received[0].headers['x-replguard-source-pop'], 'calgary-01');
    const refused = await post(await pinned.ready, '{"entries":[]}');
    assert.equal(refused.status, 502);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(good.audit.map((l) => JSON.parse(l).event.reason), ['SIGNER_DELIVERED']);
    assert.deepEqual(pinned.audit.map((l) => JSON.parse(l).event.reason), ['SIGNER_BACKUP_PIN_MISMATCH']);
    assert.deepEqual(guard.audit.map((l) => JSON.parse(l).event.reason), ['FORWARDED'], 'the pinned signer sent nothing');
  } finally {
    for (const p of processes) p.child.kill('SIGTERM');
    backup.kill('SIGTERM');
  }
  await Promise.all(processes.map((p) => p.exited));
});
