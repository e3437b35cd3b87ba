// Who a request is from, through the real program (Node and Deno: the harness picks): a verified
// client certificate takes part in identity agreement whatever auth.methods lists, a certificate
// that does not verify is refused even when mTLS is not required, and a failure counts against a
// POP only when the credential naming it was fully verified, pins included, after a reload too.
import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import YAML from 'yaml';
import { generateToken } from '../../src/cli/gen-token.ts';
import { call, refusedAtConnection } from '../helpers/client.ts';
import { baseConfig, startGuard, TEST_LIMITS } from '../helpers/guard.ts';
import { makePki, type CertFiles } from '../helpers/pki.ts';
import { atomicWrite, keepAliveClient, reloads, waitFor } from '../helpers/reload.ts';
import { startBackup } from '../helpers/upstream.ts';

const pki = makePki([]);
const dir = mkdtempSync(join(tmpdir(), 'replguard-identity-'));

function writeToken(name: string, content: string): string {
  const file = join(dir, name);
  writeFileSync(`${file}.tmp`, content, { mode: 0o600 });
  chmodSync(`${file}.tmp`, 0o600);
  renameSync(`${file}.tmp`, file);
  return file;
}
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const sha256 = (cert: CertFiles) => new X509Certificate(readFileSync(cert.cert)).fingerprint256;

t.test('auth.methods [bearer]: a verified certificate still has to agree with the token', async (t) => {
  const calgaryToken = generateToken();
  const denverToken = generateToken();
  const calgary = pki.client('calgary-01');
  const backup = await startBackup();
  const guard = await startGuard(baseConfig(pki, backup.url, {
    auth: { methods: ['bearer'] },
    peers: [
      { id: 'calgary-01', cert: { cn: 'calgary-01' }, token_files: [writeToken('calgary', calgaryToken)] },
      { id: 'denver-02', cert: { cn: 'denver-02' }, token_files: [writeToken('denver', denverToken)] },
    ],
  }));
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });

  const mismatch = await call(guard.port, pki.caFile, { cert: calgary, headers: bearer(denverToken), body: JSON.stringify({ source_pop: 'denver-02', entries: [], timestamp: Math.floor(Date.now() / 1000) }) });
  t.equal(mismatch.status, 403, "calgary-01's certificate with denver-02's token is refused");
  const [event] = await guard.waitForEvents((e) => e.event.reason === 'AUTH_IDENTITY_MISMATCH', 1);
  t.same(event!.replguard.credentials, ['mtls', 'bearer'], 'the certificate took part, though mtls is not in auth.methods');
  t.equal(backup.received().length, 0, 'nothing reached the backup');

  t.equal((await call(guard.port, pki.caFile, { cert: calgary, headers: bearer(calgaryToken) })).status, 200, 'the certificate and the token of one POP agree');
  t.equal((await call(guard.port, pki.caFile, { headers: bearer(calgaryToken) })).status, 200, 'no certificate: the token alone decides');
  t.ok(await refusedAtConnection(guard.port, pki.caFile, { cert: pki.foreignClient('calgary-01'), headers: bearer(calgaryToken) }), 'a certificate that does not verify is refused, even with a good token');
  await guard.waitForEvents((e) => e.event.reason === 'TLS_CLIENT_CERT_UNTRUSTED', 1);
  t.same(backup.received().map((r) => r.headers['x-replguard-source-pop']), ['calgary-01', 'calgary-01']);
});

t.test("a pin changed by a reload: the retired certificate bans its holder's address, never the POP", async (t) => {
  const retired = pki.client('calgary-01');
  const current = pki.client('calgary-01');
  const backup = await startBackup();
  const base = baseConfig(pki, backup.url, {
    auth: { methods: ['mtls'], reload_interval: '1h' },
    limits: { ...TEST_LIMITS, ban_after_failures: 3 },
    peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' }, cert_sha256: [sha256(retired)] }],
  });
  const guard = await startGuard(base);
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });
  // A keep-alive connection with the certificate about to be retired, opened before the reload.
  const open = keepAliveClient(guard.port, pki.caFile, retired);
  t.teardown(() => open.close());
  t.equal((await open.post()).status, 200, 'the pinned certificate is served');

  const count = reloads(guard, 'config').length;
  atomicWrite(guard.configFile, YAML.stringify({ ...base, peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' }, cert_sha256: [sha256(current)] }] }), 0o644);
  t.ok(await waitFor(() => reloads(guard, 'config').length === count + 1), 'the new pin is in force');
  const next = await open.post();
  t.same([next.status, next.reused, next.connection], [403, true, 'close'], 'the retired certificate is refused on its open connection, which is closed');

  // Someone holding the retired certificate (CA-valid, failing the pin) from another address.
  for (let i = 0; i < 4; i++) await call(guard.port, pki.caFile, { cert: retired, localAddress: '127.0.0.31' }).catch(() => undefined);
  const [ban] = await guard.waitForEvents((e) => e.event.reason === 'LIMIT_BAN_STARTED', 1);
  t.equal(ban!.replguard.ban.key, 'addr:127.0.0.31', 'the address is banned');
  t.equal(guard.audit().filter((e) => e.event.reason === 'LIMIT_BAN_STARTED' && e.replguard.ban.key === 'pop:calgary-01').length, 0, 'the POP is not');
  t.equal((await call(guard.port, pki.caFile, { cert: current, localAddress: '127.0.0.32' })).status, 200, 'the POP with its current certificate is served');
  const refusals = guard.audit().filter((e) => e.event.reason === 'AUTH_CERT_PIN_MISMATCH').length;
  t.ok(refusals >= 3, `each use of the retired certificate is audited (${refusals})`);
});

t.test("a certificate from another CA with a POP's name bans its sender's address, never the POP", async (t) => {
  const calgary = pki.client('calgary-01');
  const forged = pki.foreignClient('calgary-01');
  const backup = await startBackup();
  const guard = await startGuard(baseConfig(pki, backup.url, {
    limits: { ...TEST_LIMITS, ban_after_failures: 3 },
    peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' } }], // no pin: the name alone would match
  }));
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });
  for (let i = 0; i < 4; i++) t.ok(await refusedAtConnection(guard.port, pki.caFile, { cert: forged, localAddress: '127.0.0.51' }), `forged attempt ${i + 1} refused`);
  const [ban] = await guard.waitForEvents((e) => e.event.reason === 'LIMIT_BAN_STARTED', 1);
  t.equal(ban!.replguard.ban.key, 'addr:127.0.0.51', "the sender's address is banned");
  t.equal(guard.audit().filter((e) => e.event.reason === 'LIMIT_BAN_STARTED' && e.replguard.ban.key === 'pop:calgary-01').length, 0, 'the POP is not');
  t.equal((await call(guard.port, pki.caFile, { cert: calgary, localAddress: '127.0.0.52' })).status, 200, 'the POP with its real certificate is served');
});
