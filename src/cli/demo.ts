/**
 * `replguard demo`: the README's first command. Creates the demo PKI if missing, starts the
 * demo backup (demo/backup.mjs, a separate process like the real legacy backup) and the guard
 * in front of it with config/demo.yaml, and prints a curl command that goes through.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import process from 'node:process';
import { createInterface } from 'node:readline';
import { createAuditLog } from '../audit/audit-log.ts';
import { ConfigError } from '../config/errors.ts';
import { loadConfig } from '../guard/config.ts';
import { loadRoleConfig } from './role-config.ts';
import { createOperationalLog } from '../log/operational.ts';
import { startGuard, type Guard } from '../guard/guard.ts';
import { startSigner, type Signer } from '../signer/signer.ts';
import { writeDevPki } from './dev-pki.ts';
import { parseCommandArgs } from './args.ts';
import { packageRoot } from './package-root.ts';

function startBackup(record: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [join(packageRoot, 'demo', 'backup.mjs'), '--port', '8080', '--record', record], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', () => resolve(child));
    child.once('exit', (code) => reject(new ConfigError([{ path: 'demo', message: `the demo backup exited (code ${code}); is port 8080 free?` }])));
  });
}

export async function run(argv: string[] = []): Promise<number> {
  parseCommandArgs('demo', argv);
  if (typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined') {
    throw new ConfigError([{ path: 'demo', message: 'the demo runs under Node (npm run demo); under Deno use serve -c FILE' }]);
  }
  const demoDir = join(packageRoot, '.demo');
  const pki = join(demoDir, 'pki');
  if (!existsSync(join(pki, 'ca.crt'))) {
    await writeDevPki(pki, ['calgary-01', 'zurich-01']);
    process.stderr.write(`demo: created a demo PKI in ${pki}\n`);
  }
  const keys = join(demoDir, 'keys');
  if (!existsSync(join(keys, 'calgary-01-signing.key'))) {
    // An Ed25519 pair: the signer signs with the private key, the guard verifies with the public one.
    mkdirSync(keys, { recursive: true, mode: 0o700 });
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    writeFileSync(join(keys, 'calgary-01-signing.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    writeFileSync(join(keys, 'calgary-01-signing.pub'), publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o644 });
    process.stderr.write(`demo: created an Ed25519 signing key pair for calgary-01 in ${keys}\n`);
  }
  const loaded = loadConfig(join(packageRoot, 'config', 'demo.yaml'));
  const primary = loadRoleConfig(join(packageRoot, 'config', 'demo-primary.yaml'));
  if (primary.role !== 'primary') throw new ConfigError([{ path: 'demo', message: 'config/demo-primary.yaml must say role: primary' }]);
  const record = join(demoDir, 'received.ndjson');
  const backup = await startBackup(record);
  const log = createOperationalLog('info');
  const audit = createAuditLog();
  let guard: Guard | undefined;
  let signer: Signer | undefined;
  try {
    guard = await startGuard(loaded.config, { audit, log });
    signer = await startSigner(primary.config, { audit, log });
  } catch (err) {
    await guard?.shutdown();
    backup.kill('SIGTERM');
    throw err;
  }
  const rel = (p: string) => relative(process.cwd(), p) || '.';
  const body = JSON.stringify({ entries: [{ id: 1, op: 'upsert' }] });
  process.stderr.write(
    `\nreplguard demo: both roles on one machine.\n` +
    `  primary (you, with curl) --HTTP--> signer 127.0.0.1:${signer.port} --mTLS + Ed25519 signature--> guard https://localhost:${guard.port} --> demo backup 127.0.0.1:8080\n` +
    `Audit events of both (one JSON line per request) go to stdout; what the backup received goes to ${rel(record)}.\n` +
    `Try it, as the unmodified primary of POP calgary-01 (plain HTTP, no credential, no signature):\n\n` +
    `curl -H 'content-type: application/json' --data '${body}' http://127.0.0.1:${signer.port}/api/replication/apply\n\n` +
    `The guard refuses the same batch sent straight to it with the right certificate but no signature (401):\n` +
    `curl --cacert ${rel(join(pki, 'ca.crt'))} --cert ${rel(join(pki, 'calgary-01.crt'))} --key ${rel(join(pki, 'calgary-01.key'))} \\\n` +
    `  -H 'content-type: application/json' --data '{"source_pop":"calgary-01","entries":[]}' https://localhost:${guard.port}/api/replication/apply\n\n` +
    `Ctrl-C stops the signer, the guard and the demo backup.\n\n`,
  );
  return new Promise<number>((resolve) => {
    const stop = () => {
      Promise.allSettled([signer.shutdown(), guard.shutdown()]).finally(() => {
        backup.kill('SIGTERM');
        resolve(0);
      });
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
