// Files others can write are not trusted: a config file that is group/other-writable stops
// start-up (exit 2, the file and the fix); a running guard whose config file becomes
// other-writable refuses to reload it, even edited, and keeps serving the config in force; a
// client CA bundle in a group-writable folder is refused at start-up and at reload, so an
// attacker's CA written there is never trusted.
import { copyFileSync, chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import YAML from 'yaml';
import { DevCa } from '../../src/tls/dev-ca.ts';
import { call, refusedAtConnection } from '../helpers/client.ts';
import { baseConfig, runCli, startGuard, writeConfig } from '../helpers/guard.ts';
import { makePki } from '../helpers/pki.ts';
import { atomicWrite, sighup, waitFor } from '../helpers/reload.ts';
import { startBackup } from '../helpers/upstream.ts';

const pki = makePki([]);
const calgary = pki.client('calgary-01');
const CALGARY = { id: 'calgary-01', cert: { cn: 'calgary-01' } };
const URL = 'http://127.0.0.1:9';

/** The client CA bundle alone in its own folder, so that the folder's mode can be changed. */
function caInOwnFolder(): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'replguard-ca-'));
  const file = join(dir, 'ca.crt');
  copyFileSync(pki.caFile, file);
  chmodSync(file, 0o644);
  return { dir, file };
}

t.test('a group- or other-writable config file stops start-up with the file and the fix', async (t) => {
  for (const mode of [0o666, 0o664]) {
    const file = writeConfig(baseConfig(pki, URL));
    chmodSync(file, mode);
    const result = await runCli(['serve', '-c', file]);
    t.equal(result.code, 2, `mode ${mode.toString(8)}: exit 2`);
    t.match(result.stderr, file, 'names the file');
    t.match(result.stderr, `chmod go-w ${file}`, 'and the fix');
  }
  const file = writeConfig(baseConfig(pki, URL, { peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' }, unknown_key: 1 }] }));
  chmodSync(file, 0o666);
  const both = await runCli(['check-config', '-c', file]);
  t.equal(both.code, 2);
  t.match(both.stderr, `chmod go-w ${file}`, 'reported together with the other problems of the file');
  t.match(both.stderr, 'peers[0].unknown_key');
});

t.test('a client CA bundle in a group-writable folder stops start-up', async (t) => {
  const ca = caInOwnFolder();
  chmodSync(ca.dir, 0o775);
  const result = await runCli(['serve', '-c', writeConfig(baseConfig(pki, URL, { tls: { cert_file: pki.server.cert, key_file: pki.server.key, client_ca_file: ca.file } }))]);
  t.equal(result.code, 2, 'exit 2');
  t.match(result.stderr, 'tls.client_ca_file', 'names the key');
  t.match(result.stderr, `chmod go-w ${ca.dir}`, 'and the fix for the folder');
});

t.test('a running guard: the config file made other-writable, then edited, is not reloaded', async (t) => {
  const backup = await startBackup();
  const base = baseConfig(pki, backup.url, { auth: { methods: ['mtls'], reload_interval: '1h' }, peers: [CALGARY] });
  const guard = await startGuard(base);
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });
  const failed = () => guard.audit().filter((e) => e.event.reason === 'CONFIG_RELOAD_FAILED' && /config/.test(e.replguard.detail));
  t.equal((await call(guard.port, pki.caFile, { cert: calgary })).status, 200, 'served before');

  chmodSync(guard.configFile, 0o666);
  await sighup(guard, 'config');
  t.ok(await waitFor(() => failed().length >= 1), 'the reload is refused as soon as the file is writable by others (CONFIG_RELOAD_FAILED)');
  // The attacker's edit: no peers at all would be a denial of service; any edit must be refused.
  const before = failed().length;
  writeFileSync(guard.configFile, YAML.stringify({ ...base, peers: [] }));
  t.equal(readFileSync(guard.configFile, 'utf8').includes('calgary-01'), false, 'the file now says otherwise');
  await sighup(guard, 'config');
  t.ok(await waitFor(() => failed().length > before), 'the edited file is refused too');
  t.match(failed().at(-1)!.replguard.detail, guard.configFile, 'the event names the file');
  t.equal(failed().at(-1)!.event.kind, 'alert');
  t.equal((await call(guard.port, pki.caFile, { cert: calgary })).status, 200, 'the config in force is kept: calgary-01 is still a peer');
  t.equal(guard.child.exitCode, null, 'still running');

  chmodSync(guard.configFile, 0o644);
  await sighup(guard, 'config');
  t.ok(await waitFor(() => guard.audit().some((e) => e.event.reason === 'CONFIG_RELOADED' && /config/.test(e.replguard.detail))), 'made safe again, the edit applies');
  t.equal((await call(guard.port, pki.caFile, { cert: calgary })).status, 403, 'calgary-01 is no longer a peer');
});

t.test('a running guard: a client CA bundle whose folder becomes group-writable is not reloaded', async (t) => {
  const ca = caInOwnFolder();
  const backup = await startBackup();
  const guard = await startGuard(baseConfig(pki, backup.url, {
    auth: { methods: ['mtls'], reload_interval: '1h' },
    tls: { cert_file: pki.server.cert, key_file: pki.server.key, client_ca_file: ca.file },
    peers: [CALGARY],
  }));
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });
  const failed = () => guard.audit().filter((e) => e.event.reason === 'CONFIG_RELOAD_FAILED' && /tls\.client_ca_file/.test(e.replguard.detail));

  chmodSync(ca.dir, 0o775);
  await sighup(guard, 'tls');
  t.ok(await waitFor(() => failed().length >= 1), 'refused (CONFIG_RELOAD_FAILED naming tls.client_ca_file)');
  // The attack: another user of the group swaps in their own CA and mints a calgary-01 certificate.
  const attacker = DevCa.create('attacker CA');
  const forged = attacker.issueClient('calgary-01');
  const forgedFiles = { cert: join(ca.dir, 'forged.crt'), key: join(ca.dir, 'forged.key') };
  writeFileSync(forgedFiles.cert, forged.certPem);
  writeFileSync(forgedFiles.key, forged.keyPem);
  const count = failed().length;
  atomicWrite(ca.file, attacker.certPem, 0o644);
  await sighup(guard, 'tls');
  t.ok(await waitFor(() => failed().length > count), 'the attacker\'s bundle is refused too');
  t.ok(await refusedAtConnection(guard.port, pki.caFile, { cert: forgedFiles }), 'a certificate of the attacker\'s CA is refused at the handshake');
  t.equal((await call(guard.port, pki.caFile, { cert: calgary })).status, 200, 'the bundle in force still admits calgary-01');
  t.ok(guard.audit().some((e) => e.event.reason === 'TLS_CLIENT_CERT_UNTRUSTED'), 'the forged certificate is audited as untrusted');
});
