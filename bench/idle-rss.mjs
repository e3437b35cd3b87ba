#!/usr/bin/env node
// Idle resident memory of a serving guard (issue 22, part 3): starts `node dist/main.js serve -c
// <config>` of a build as the bench starts its `replguard` targets, waits for the "ready" line,
// lets it idle past the secret-strength dictionaries' release, and reads Rss and Pss from
// /proc/<pid>/smaps_rollup (Linux). Two configs: `mtls` (the bench's `replguard`: no secret
// file, so no strength check) and `secrets` (mTLS + bearer + HMAC signature: two secrets judged
// at start-up). Nothing is sent to the guard; its upstream is never contacted.
//
//   npm run build && node bench/idle-rss.mjs                     # this checkout (dist/)
//   node bench/idle-rss.mjs --dist /tmp/before/dist --reps 3      # another build
//   options: --config mtls|secrets|both (default both), --idle-ms 4000, --reps 3, --node-args "..."
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
const { values: opt } = parseArgs({
  options: {
    dist: { type: 'string', default: join(ROOT, 'dist') },
    config: { type: 'string', default: 'both' },
    'idle-ms': { type: 'string', default: '4000' },
    reps: { type: 'string', default: '3' },
    'node-args': { type: 'string', default: '' },
  },
});
const dist = resolve(opt.dist);
const main = join(dist, 'main.js');
const idleMs = Number(opt['idle-ms']);
const nodeArgs = opt['node-args'].split(' ').filter(Boolean);

const dir = mkdtempSync(join(tmpdir(), 'replguard-idle-rss-'));
const pki = join(dir, 'pki');
const made = spawnSync(process.execPath, [main, 'dev-pki', '--out', pki], { encoding: 'utf8' });
if (made.status !== 0) throw new Error(`dev-pki failed: ${made.stderr}`);
const token = join(dir, 'calgary-01.token');
const minted = spawnSync(process.execPath, [main, 'gen-token', '-o', token], { encoding: 'utf8' });
if (minted.status !== 0) throw new Error(`gen-token failed: ${minted.stderr}`);
const signing = join(dir, 'calgary-01.whsec');
writeFileSync(signing, `whsec_${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });

const freePort = () => new Promise((ok) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const { port } = s.address();
    s.close(() => ok(port));
  });
});

async function configFile(kind) {
  const auth = kind === 'mtls' ? '{ methods: [mtls] }' : '{ methods: [mtls, bearer, signature] }';
  const peer = kind === 'mtls' ? '' : `, token_files: [${token}], signing_keys: [${signing}]`;
  const file = join(dir, `${kind}.yaml`);
  writeFileSync(file, `pop_id: zurich-01
role: backup
listen: { host: 127.0.0.1, port: ${await freePort()} }
tls: { cert_file: ${pki}/server.crt, key_file: ${pki}/server.key, client_ca_file: ${pki}/ca.crt, min_version: TLSv1.3 }
upstream: { url: 'http://127.0.0.1:9', timeout: 30s }
routes: [ { method: POST, path: /api/replication/apply } ]
auth: ${auth}
peers: [ { id: calgary-01, cert: { cn: calgary-01 }${peer} } ]
admin: { host: 127.0.0.1, port: ${await freePort()} }
`);
  return file;
}

const smaps = (pid) => {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kib = (field) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { rss: kib('Rss') / 1024, pss: kib('Pss') / 1024 };
};

async function measure(kind) {
  const file = await configFile(kind);
  const child = spawn(process.execPath, [...nodeArgs, main, 'serve', '-c', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  await new Promise((ok, fail) => {
    child.stderr.on('data', (d) => {
      stderr += d;
      if (/"message":"ready"/.test(stderr)) ok();
    });
    child.once('exit', (code) => fail(new Error(`the guard exited (${code}) before it was ready:\n${stderr}`)));
  });
  const atReady = smaps(child.pid);
  await new Promise((ok) => setTimeout(ok, idleMs));
  const idle = smaps(child.pid);
  const exited = new Promise((ok) => child.once('exit', ok));
  child.kill('SIGTERM');
  await exited;
  return { atReady, idle };
}

const kinds = opt.config === 'both' ? ['mtls', 'secrets'] : [opt.config];
console.log(`build ${dist}; Node ${process.version}; MiB from /proc/<pid>/smaps_rollup; idle = ${idleMs} ms after "ready"`);
try {
  for (const kind of kinds) {
    const runs = [];
    for (let i = 0; i < Number(opt.reps); i++) runs.push(await measure(kind));
    const f = (xs) => `${Math.min(...xs).toFixed(1)} to ${Math.max(...xs).toFixed(1)}`;
    console.log(`${kind.padEnd(8)} Rss at ready ${f(runs.map((r) => r.atReady.rss))} | Rss idle ${f(runs.map((r) => r.idle.rss))} | Pss idle ${f(runs.map((r) => r.idle.pss))}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
