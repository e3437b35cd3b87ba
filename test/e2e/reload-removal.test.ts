// Removing material revokes it: a deleted bearer secret file, a POP's only JWT key removed from
// its folder and a deleted signature key are refused from the reload on (on a keep-alive
// connection opened before, too), audited as CREDENTIAL_REMOVED; an unreadable or malformed
// replacement keeps the old material in force; a deleted revocation list keeps its ids revoked.
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { generateToken } from '../../src/cli/gen-token.ts';
import { parseSignKey } from '../../src/replay/keys.ts';
import { signatureHeaders } from '../../src/replay/signing.ts';
import { call } from '../helpers/client.ts';
import { baseConfig, runCli, startGuard, writeConfig, type AuditRecord, type GuardProcess } from '../helpers/guard.ts';
import { makePki } from '../helpers/pki.ts';
import { atomicWrite, keepAliveClient, sighup, waitFor } from '../helpers/reload.ts';
import { makeHmacKey } from '../helpers/signing.ts';
import { startBackup } from '../helpers/upstream.ts';

const pki = makePki([]);
const calgary = pki.client('calgary-01');
const dir = mkdtempSync(join(tmpdir(), 'replguard-removal-'));
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Replaces `file` in one step with a symbolic link to a folder: a name that can no longer be read as a file. */
function replaceWithFolder(file: string): void {
  const folder = `${file}.folder`;
  mkdirSync(folder, { mode: 0o700 });
  symlinkSync(folder, `${file}.tmp`);
  renameSync(`${file}.tmp`, file);
}

const events = (guard: GuardProcess, reason: string, source?: string): AuditRecord[] =>
  guard.audit().filter((e) => e.event.reason === reason && (source === undefined || String(e.replguard?.detail).includes(source)));

/** Sends SIGHUP for `source`, then waits for `count` events of `reason` from it. */
async function reloadUntil(t: Test, guard: GuardProcess, source: string, reason: string, count: number): Promise<AuditRecord> {
  await sighup(guard, source);
  t.ok(await waitFor(() => events(guard, reason, source).length >= count), `${source}: ${reason}`);
  return events(guard, reason, source).at(-1)!;
}

t.test('bearer secrets, JWT keys and the revoked-id list', async (t) => {
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens, { mode: 0o700 });
  const [secretA, secretB] = [generateToken(), generateToken()];
  const [fileA, fileB] = [atomicWrite(join(tokens, 'a'), secretA), atomicWrite(join(tokens, 'b'), secretB)];
  const keys = join(dir, 'jwt-keys');
  mkdirSync(keys, { mode: 0o755 });
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const privateKey = atomicWrite(join(dir, 'calgary-jwt.key'), pair.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const publicPem = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const publicKey = atomicWrite(join(keys, 'calgary.pub'), publicPem, 0o644);
  const revoked = atomicWrite(join(dir, 'revoked.txt'), '# none yet\n', 0o644);
  const makeJwt = async (): Promise<string> => {
    const out = join(dir, `token-${Math.random().toString(36).slice(2)}`);
    const result = await runCli(['make-jwt', '-k', privateKey, '--pop', 'calgary-01', '--audience', 'zurich-01', '--route', 'POST:/api/replication/apply', '-o', out]);
    if (result.code !== 0) throw new Error(result.stderr);
    return readFileSync(out, 'utf8').trim();
  };
  const [jwt, revokedJwt] = [await makeJwt(), await makeJwt()];
  const jtiOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).jti as string;

  const backup = await startBackup();
  const guard = await startGuard(baseConfig(pki, backup.url, {
    auth: {
      methods: ['mtls', 'bearer', 'jwt'],
      reload_interval: '1h',
      jwt: { public_keys: [{ path: keys, alg: 'ES256', pop: 'calgary-01' }], revoked_ids_file: revoked },
    },
    peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' }, token_files: [fileA, fileB] }],
  }));
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });
  const status = async (token: string) => (await call(guard.port, pki.caFile, { cert: calgary, headers: bearer(token) })).status;
  const refusals = (reason: string) => events(guard, reason).length;

  await t.test('a deleted token file: that secret is refused, on an open connection too; the other still works', async (t) => {
    const open = keepAliveClient(guard.port, pki.caFile, calgary);
    t.teardown(() => open.close());
    t.equal((await open.post(undefined, bearer(secretA))).status, 200, 'secret a, on a keep-alive connection');
    unlinkSync(fileA);
    const removed = await reloadUntil(t, guard, 'bearer tokens', 'CREDENTIAL_REMOVED', 1);
    t.equal(removed.event.kind, 'alert');
    t.same(removed.replguard.removed, [{ key: 'peers[0].token_files[0]', file: fileA, pop: 'calgary-01' }], 'the event names the key path, the file and the POP');
    t.equal(removed.replguard.pop, 'calgary-01');
    const before = refusals('AUTH_BEARER_INVALID');
    const again = await open.post(undefined, bearer(secretA));
    t.same([again.status, again.reused], [401, true], 'secret a is refused on the connection opened before the removal');
    t.equal(await status(secretA), 401, 'and on a new one');
    t.ok(await guard.waitForEvents((e) => e.event.reason === 'AUTH_BEARER_INVALID', before + 2), 'as AUTH_BEARER_INVALID');
    t.equal(await status(secretB), 200, 'the POP\'s other secret still works');
    t.equal((await open.post(undefined, bearer(secretB))).status, 200);
  });

  await t.test('an unreadable or malformed replacement keeps the secret in force', async (t) => {
    const failed = events(guard, 'CONFIG_RELOAD_FAILED', 'bearer tokens').length;
    replaceWithFolder(fileB);
    await reloadUntil(t, guard, 'bearer tokens', 'CONFIG_RELOAD_FAILED', failed + 1);
    t.match(events(guard, 'CONFIG_RELOAD_FAILED', 'bearer tokens').at(-1)!.replguard.detail, 'peers[0].token_files[1]', 'a folder in place of the file: refused, naming the key');
    t.equal(await status(secretB), 200, 'secret b still in force');
    const failedAgain = events(guard, 'CONFIG_RELOAD_FAILED', 'bearer tokens').length;
    atomicWrite(fileB, 'too-short');
    await reloadUntil(t, guard, 'bearer tokens', 'CONFIG_RELOAD_FAILED', failedAgain + 1);
    t.equal(await status(secretB), 200, 'malformed content: secret b still in force');
    t.equal(events(guard, 'CREDENTIAL_REMOVED', 'bearer tokens').length, 1, 'neither is a removal');
  });

  await t.test('a deleted revocation list keeps its ids revoked', async (t) => {
    t.equal(await status(revokedJwt), 200, 'not revoked yet');
    atomicWrite(revoked, `${jtiOf(revokedJwt)}\n`, 0o644);
    await reloadUntil(t, guard, 'revoked JWT ids', 'CONFIG_RELOADED', 1);
    const before = refusals('AUTH_JWT_REVOKED');
    t.equal(await status(revokedJwt), 401, 'revoked');
    unlinkSync(revoked);
    await reloadUntil(t, guard, 'revoked JWT ids', 'CONFIG_RELOAD_FAILED', 1);
    t.match(events(guard, 'CONFIG_RELOAD_FAILED', 'revoked JWT ids').at(-1)!.replguard.detail, 'auth.jwt.revoked_ids_file');
    t.equal(await status(revokedJwt), 401, 'still revoked after the list is deleted');
    t.ok(await guard.waitForEvents((e) => e.event.reason === 'AUTH_JWT_REVOKED', before + 2), 'as AUTH_JWT_REVOKED');
  });

  await t.test('a POP\'s only JWT key removed from its folder: its JWTs are refused', async (t) => {
    t.equal(await status(jwt), 200, 'verified (and cached)');
    const failed = events(guard, 'CONFIG_RELOAD_FAILED', 'JWT public keys').length;
    atomicWrite(publicKey, 'not a key', 0o644);
    await reloadUntil(t, guard, 'JWT public keys', 'CONFIG_RELOAD_FAILED', failed + 1);
    t.equal(await status(jwt), 200, 'a malformed replacement keeps the key in force');
    unlinkSync(publicKey);
    const removed = await reloadUntil(t, guard, 'JWT public keys', 'CREDENTIAL_REMOVED', 1);
    t.same(removed.replguard.removed, [{ key: 'auth.jwt.public_keys[0].path', file: publicKey, pop: 'calgary-01' }]);
    const before = refusals('AUTH_JWT_KEY_UNKNOWN');
    t.equal(await status(jwt), 401, 'the token that was verified and cached before is refused');
    t.ok(await guard.waitForEvents((e) => e.event.reason === 'AUTH_JWT_KEY_UNKNOWN', before + 1), 'as AUTH_JWT_KEY_UNKNOWN');
    t.equal(await status(secretB), 200, 'the POP\'s bearer secret is another kind of credential: still valid');
  });
});

t.test('a deleted signature key: requests signed with it are refused', async (t) => {
  const keys = join(dir, 'signing');
  mkdirSync(keys, { mode: 0o700 });
  const [keyA, keyB] = [makeHmacKey(), makeHmacKey()];
  const [fileA, fileB] = [atomicWrite(join(keys, 'a'), keyA.text), atomicWrite(join(keys, 'b'), keyB.text)];
  const backup = await startBackup();
  const guard = await startGuard(baseConfig(pki, backup.url, {
    auth: { methods: ['mtls', 'signature'], reload_interval: '1h' },
    peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' }, signing_keys: [fileA, fileB] }],
  }));
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });
  let n = 0;
  const status = async (key: { text: string }) => {
    const id = `e2e-removal-${String(n++).padStart(12, '0')}`;
    const body = Buffer.from(JSON.stringify({ source_pop: 'calgary-01', entries: [{ id: n }] }));
    const headers = signatureHeaders([parseSignKey(key.text)], body, id, String(Math.floor(Date.now() / 1000)));
    return (await call(guard.port, pki.caFile, { cert: calgary, body, headers })).status;
  };
  t.same([await status(keyA), await status(keyB)], [200, 200]);

  replaceWithFolder(fileA);
  await reloadUntil(t, guard, 'signing keys', 'CONFIG_RELOAD_FAILED', 1);
  t.equal(await status(keyA), 200, 'a folder in place of the key file keeps the key in force');

  unlinkSync(fileA);
  const removed = await reloadUntil(t, guard, 'signing keys', 'CREDENTIAL_REMOVED', 1);
  t.same(removed.replguard.removed, [{ key: 'peers[0].signing_keys[0]', file: fileA, pop: 'calgary-01' }]);
  t.equal(await status(keyA), 401, 'a request signed with the deleted key is refused');
  t.ok(await guard.waitForEvents((e) => e.event.reason === 'SIGNATURE_MISMATCH', 1), 'as SIGNATURE_MISMATCH');
  t.equal(await status(keyB), 200, 'the other key still works');
});

t.test('at start-up a missing file is still a configuration error', async (t) => {
  const missing = join(dir, 'no-such-token');
  const result = await runCli(['serve', '-c', writeConfig(baseConfig(pki, 'http://127.0.0.1:9', {
    auth: { methods: ['mtls', 'bearer'] },
    peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' }, token_files: [missing] }],
  }))]);
  t.equal(result.code, 2, 'a typo must not start a guard that admits nobody');
  t.match(result.stderr, 'peers[0].token_files[0]');
});
