/**
 * `replguard demo`: the README's first command. Creates the demo PKI if missing, starts the
 * demo backup (demo/backup.mjs, a separate process like the real legacy backup) and the guard
 * in front of it with config/demo.yaml, and prints a curl command that goes through.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import process from 'node:process';
import { createInterface } from 'node:readline';
import { createAuditLog } from '../audit/audit-log.ts';
import { ConfigError } from '../config/errors.ts';
import { loadConfig } from '../config/load.ts';
import { createOperationalLog } from '../log/operational.ts';
import { startGuard } from '../server/guard.ts';
import { writeDevPki } from './dev-pki.ts';
import { packageRoot } from './package-root.ts';

export const usage = 'demo                                          demo PKI + demo backup + guard, and a curl that works';

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

export async function run(): Promise<number> {
  if (typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined') {
    throw new ConfigError([{ path: 'demo', message: 'the demo runs under Node (npm run demo); under Deno use serve -c FILE' }]);
  }
  const demoDir = join(packageRoot, '.demo');
  const pki = join(demoDir, 'pki');
  if (!existsSync(join(pki, 'ca.crt'))) {
    writeDevPki(pki, ['calgary-01', 'zurich-01']);
    process.stderr.write(`demo: created a demo PKI in ${pki}\n`);
  }
  const loaded = loadConfig(join(packageRoot, 'config', 'demo.yaml'));
  const record = join(demoDir, 'received.ndjson');
  const backup = await startBackup(record);
  const log = createOperationalLog('info');
  const audit = createAuditLog();
  let guard;
  try {
    guard = await startGuard(loaded.config, { audit, log });
  } catch (err) {
    backup.kill('SIGTERM');
    throw err;
  }
  const rel = (p: string) => relative(process.cwd(), p) || '.';
  const body = JSON.stringify({ source_pop: 'calgary-01', entries: [{ id: 1, op: 'upsert' }], timestamp: Math.floor(Date.now() / 1000) });
  process.stderr.write(
    `\nreplguard demo: the guard listens on https://localhost:${guard.port}, in front of the demo backup on 127.0.0.1:8080.\n` +
    `Audit events (one JSON line per request) go to stdout; what the backup received goes to ${rel(record)}.\n` +
    `Try it (as POP calgary-01):\n\n` +
    `curl --cacert ${rel(join(pki, 'ca.crt'))} --cert ${rel(join(pki, 'calgary-01.crt'))} --key ${rel(join(pki, 'calgary-01.key'))} \\\n` +
    `  -H 'content-type: application/json' --data '${body}' \\\n` +
    `  https://localhost:${guard.port}/api/replication/apply\n\n` +
    `Without --cert the connection is refused; zurich-01's certificate is valid but not an authorised peer (403).\n` +
    `Ctrl-C stops the guard and the demo backup.\n\n`,
  );
  return new Promise<number>((resolve) => {
    const stop = () => {
      guard.shutdown().finally(() => {
        backup.kill('SIGTERM');
        resolve(0);
      });
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
