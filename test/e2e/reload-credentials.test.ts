// Credential rotation the way Kubernetes delivers it: the kubelet swaps the `..data` symlink of
// a mounted Secret, and the folder watch reloads (no signal), under steady streams of
// authorised requests (a bearer secret, a JWT, a request signing key). Each time: zero failed requests caused by the
// reload, and the old material refused once it is removed.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { generateToken } from '../../src/cli/gen-token.ts';
import { call } from '../helpers/client.ts';
import { baseConfig, runCli, startGuard } from '../helpers/guard.ts';
import { makePki } from '../helpers/pki.ts';
import { projectedSecret, reloads, startTraffic, waitFor } from '../helpers/reload.ts';
import { startBackup } from '../helpers/upstream.ts';
import { makeHmacKey } from '../helpers/signing.ts';
import { parseSignKey } from '../../src/replay/keys.ts';
import { signatureHeaders } from '../../src/replay/signing.ts';

const pki = makePki([]);
const calgary = pki.client('calgary-01');
const dir = mkdtempSync(join(tmpdir(), 'replguard-reload-creds-'));

function signingKey(name: string): { key: string; pub: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const key = join(dir, `${name}.key`);
  writeFileSync(key, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  return { key, pub: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

async function makeJwt(key: string): Promise<string> {
  const out = join(dir, `token-${Math.random().toString(36).slice(2)}`);
  const result = await runCli(['make-jwt', '-k', key, '--pop', 'calgary-01', '--audience', 'zurich-01', '--route', 'POST:/api/replication/apply', '-o', out]);
  if (result.code !== 0) throw new Error(result.stderr);
  return readFileSync(out, 'utf8').trim();
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

t.test('bearer secret and JWT key rotated through a mounted Secret, under steady streams', async (t) => {
  const [tokenA, tokenB] = [generateToken(), generateToken()];
  const [keyA, keyB] = [signingKey('a'), signingKey('b')];
  const [jwtA, jwtB] = await Promise.all([makeJwt(keyA.key), makeJwt(keyB.key)]);
  const tokens = projectedSecret(join(dir, 'tokens'), { current: tokenA, next: '' });
  const keys = projectedSecret(join(dir, 'jwt-keys'), { 'a.pub': keyA.pub });

  const backup = await startBackup();
  const guard = await startGuard(baseConfig(pki, backup.url, {
    auth: {
      methods: ['mtls', 'bearer', 'jwt'],
      reload_interval: '1h',
      jwt: { public_keys: [{ path: join(dir, 'jwt-keys'), alg: 'ES256', pop: 'calgary-01' }] },
    },
    peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' }, token_files: [tokens.path('current'), tokens.path('next')] }],
  }));
  let secret = tokenA;
  let jwt = jwtA;
  const secrets = startTraffic(guard.port, pki.caFile, () => ({ cert: calgary, headers: bearer(secret) }));
  const jwts = startTraffic(guard.port, pki.caFile, () => ({ cert: calgary, headers: bearer(jwt) }));
  t.teardown(async () => {
    await Promise.all([secrets.stop(), jwts.stop()]);
    await guard.stop();
    await backup.stop();
  });
  await Promise.all([secrets.more(2), jwts.more(2)]);
  const status = async (token: string) => (await call(guard.port, pki.caFile, { cert: calgary, headers: bearer(token) })).status;
  const refusals = (reason: string) => guard.audit().filter((e) => e.event.reason === reason).length;

  await t.test('bearer secret', async (t) => {
    let count = reloads(guard, 'bearer tokens').length;
    tokens.update({ current: tokenA, next: tokenB });
    t.ok(await waitFor(() => reloads(guard, 'bearer tokens').length === count + 1), 'the new secret is in its slot');
    t.equal(reloads(guard, 'bearer tokens').at(-1)!.trigger, 'file change');
    t.same([await status(tokenB), await status(tokenA)], [200, 200], 'both valid during the overlap');
    secret = tokenB;
    t.ok(await secrets.more(3), 'the stream uses the new secret');
    const before = refusals('AUTH_BEARER_INVALID');
    count = reloads(guard, 'bearer tokens').length;
    tokens.update({ current: '', next: tokenB });
    t.ok(await waitFor(() => reloads(guard, 'bearer tokens').length === count + 1), 'the old slot is emptied');
    t.equal(await status(tokenA), 401, 'the old secret is refused');
    t.ok(await guard.waitForEvents((e) => e.event.reason === 'AUTH_BEARER_INVALID', before + 1), 'as AUTH_BEARER_INVALID');
    t.equal(await status(tokenB), 200);
  });

  await t.test('JWT key', async (t) => {
    let count = reloads(guard, 'JWT public keys').length;
    keys.update({ 'a.pub': keyA.pub, 'b.pub': keyB.pub });
    t.ok(await waitFor(() => reloads(guard, 'JWT public keys').length === count + 1), 'the new key is in force beside the old');
    t.equal(reloads(guard, 'JWT public keys').at(-1)!.trigger, 'file change');
    t.same([await status(jwtB), await status(jwtA)], [200, 200], 'tokens of both keys valid during the overlap');
    jwt = jwtB;
    t.ok(await jwts.more(3), 'the stream uses a token of the new key');
    count = reloads(guard, 'JWT public keys').length;
    keys.update({ 'b.pub': keyB.pub });
    t.ok(await waitFor(() => reloads(guard, 'JWT public keys').length === count + 1), 'the old key is removed');
    const before = refusals('AUTH_JWT_KEY_UNKNOWN');
    t.equal(await status(jwtA), 401, 'a token of the old key is refused');
    t.ok(await guard.waitForEvents((e) => e.event.reason === 'AUTH_JWT_KEY_UNKNOWN', before + 1), 'as AUTH_JWT_KEY_UNKNOWN (its kid names no key in force)');
    t.equal(await status(jwtB), 200);
  });

  t.ok(await Promise.all([secrets.more(2), jwts.more(2)]));
  t.same([...secrets.failures, ...jwts.failures], [], 'no request of either stream failed');
  t.ok(secrets.sent() + jwts.sent() > 20, `the streams kept flowing (${secrets.sent()} + ${jwts.sent()} requests)`);
});

t.test('request signing keys rotated through a mounted Secret, under a steady stream', async (t) => {
  // Two key slots, as for tokens: a key sits in one slot at a time (the same key in two slots is
  // refused), so the unused slot holds a spare key nobody signs with.
  const [keyA, keyB, spare1, spare2] = [makeHmacKey(), makeHmacKey(), makeHmacKey(), makeHmacKey()];
  const slots = projectedSecret(join(dir, 'signing'), { current: keyA.text, next: spare1.text });
  const backup = await startBackup();
  const guard = await startGuard(baseConfig(pki, backup.url, {
    auth: { methods: ['mtls', 'signature'], reload_interval: '1h' },
    peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' }, signing_keys: [slots.path('current'), slots.path('next')] }],
  }));
  let n = 0;
  const signed = (key: { text: string }) => {
    const id = `e2e-rotation-${String(n++).padStart(12, '0')}`;
    const ts = String(Math.floor(Date.now() / 1000));
    const body = Buffer.from(JSON.stringify({ source_pop: 'calgary-01', entries: [{ id: n }] }));
    return { cert: calgary, body, headers: signatureHeaders([parseSignKey(key.text)], body, id, ts) };
  };
  let inUse = keyA;
  const stream = startTraffic(guard.port, pki.caFile, () => signed(inUse));
  t.teardown(async () => {
    await stream.stop();
    await guard.stop();
    await backup.stop();
  });
  await stream.more(2);
  const status = async (key: { text: string }) => (await call(guard.port, pki.caFile, signed(key))).status;

  let count = reloads(guard, 'signing keys').length;
  slots.update({ current: keyA.text, next: keyB.text });
  t.ok(await waitFor(() => reloads(guard, 'signing keys').length === count + 1), 'the new key is in force beside the old');
  t.equal(reloads(guard, 'signing keys').at(-1)!.trigger, 'file change');
  t.same([await status(keyB), await status(keyA)], [200, 200], 'both keys valid during the overlap');
  inUse = keyB;
  t.ok(await stream.more(3), 'the stream signs with the new key');
  count = reloads(guard, 'signing keys').length;
  slots.update({ current: spare2.text, next: keyB.text });
  t.ok(await waitFor(() => reloads(guard, 'signing keys').length === count + 1), 'the old key is removed');
  t.equal(await status(keyA), 401, 'a request signed with the old key is refused');
  t.ok(await guard.waitForEvents((e) => e.event.reason === 'SIGNATURE_MISMATCH', 1), 'as SIGNATURE_MISMATCH');
  t.equal(await status(keyB), 200);
  t.ok(await stream.more(2));
  t.same(stream.failures, [], 'no request of the stream failed');
});
