// Removing a credential file is a new state, not a failed reload: at 'reload' the loaders leave
// a deleted file out (its credentials go out of force) while at 'start' it stays a configuration
// error; the source reports what dropped out; revocation lists are the opposite (a missing one
// keeps the ids in force); the JWT cache goes with the swap.
import { generateKeyPairSync } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import t from 'tap';
import { SignJWT } from 'jose';
import { loadTokenSet } from '../../../src/auth/bearer.ts';
import { CLAIM_NAMESPACE } from '../../../src/auth/jwt-claims.ts';
import { createAuthorizationStage } from '../../../src/auth/authorization.ts';
import { createJwtCredential } from '../../../src/auth/jwt.ts';
import { jwkThumbprint, loadKeySet, loadRevokedIds } from '../../../src/auth/jwt-keys.ts';
import { generateToken } from '../../../src/cli/gen-token.ts';
import { ConfigError } from '../../../src/config/errors.ts';
import { parseConfig } from '../../../src/guard/config.ts';
import type { JwtConfig, PeerConfig } from '../../../src/config/schema.ts';
import { createOperationalLog } from '../../../src/log/operational.ts';
import { newConnection, newRequestContext } from '../../../src/pipeline/context.ts';
import { Rejection } from '../../../src/pipeline/reasons.ts';
import { createReloadableSource, type ReloadReport } from '../../../src/reload/source.ts';
import { loadSigningKeySet } from '../../../src/replay/signature-stage.ts';
import { makeHmacKey } from '../../helpers/signing.ts';

const root = mkdtempSync(join(tmpdir(), 'replguard-removal-'));
let n = 0;
const fresh = () => {
  const dir = join(root, `d${n++}`);
  mkdirSync(dir, { mode: 0o700 });
  return dir;
};
const write = (file: string, text: string, mode = 0o600) => {
  writeFileSync(file, text, { mode });
  return file;
};
const quiet = createOperationalLog('error', new Writable({ write: (_c, _e, done) => done() }) as never);
const problemPaths = (load: () => unknown): string[] => {
  try {
    load();
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems.map((p) => p.path);
  }
};
const peer = (id: string, extra: Partial<PeerConfig>): PeerConfig => ({ id, cert: { cn: id }, token_files: [], signing_keys: [], ...extra } as PeerConfig);
const pem = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();

t.test('bearer token files: a deleted one is a removal at reload, an error at start-up', async (t) => {
  const dir = fresh();
  const [a, b] = [write(join(dir, 'a'), generateToken()), write(join(dir, 'b'), generateToken())];
  const peers = [peer('calgary-01', { token_files: [a, b] })];
  t.same(loadTokenSet(peers).inventory, [
    { key: 'peers[0].token_files[0]', file: a, pop: 'calgary-01' },
    { key: 'peers[0].token_files[1]', file: b, pop: 'calgary-01' },
  ], 'the inventory names each file that holds a secret');
  unlinkSync(a);
  t.same(problemPaths(() => loadTokenSet(peers, 'start')), ['peers[0].token_files[0]'], 'start-up: a missing file is a configuration error');
  const reloaded = loadTokenSet(peers, 'reload');
  t.same(reloaded.value.tokens.map((tok) => tok.file), [b], 'reload: only the remaining secret is in force');
  t.same(reloaded.inventory!.map((h) => h.key), ['peers[0].token_files[1]']);
  mkdirSync(a);
  t.same(problemPaths(() => loadTokenSet(peers, 'reload')), ['peers[0].token_files[0]'], 'a folder in place of the file is unusable, not a removal');
  rmSync(a, { recursive: true });
  write(a, 'short');
  t.same(problemPaths(() => loadTokenSet(peers, 'reload')), ['peers[0].token_files[0]'], 'malformed content is refused');
  unlinkSync(b);
  rmSync(a);
  t.same(loadTokenSet(peers, 'reload').value.peersWithoutToken, ['calgary-01'], 'every file removed: the peer has no secret');
});

t.test('JWT keys: a deleted file, an emptied or deleted folder are removals at reload', async (t) => {
  const dir = fresh();
  const folder = join(dir, 'calgary');
  mkdirSync(folder, { mode: 0o755 });
  const [k1, k2] = [write(join(folder, 'k1.pub'), pem(), 0o644), write(join(folder, 'k2.pub'), pem(), 0o644)];
  const single = write(join(dir, 'denver.pub'), pem(), 0o644);
  const jwt: Pick<JwtConfig, 'public_keys' | 'issuer'> = {
    issuer: ['replguard'],
    public_keys: [{ path: folder, alg: 'ES256', pop: 'calgary-01' }, { path: single, alg: 'ES256', pop: 'denver-02' }],
  } as Pick<JwtConfig, 'public_keys' | 'issuer'>;
  const peers = new Set(['calgary-01', 'denver-02']);
  const first = loadKeySet(jwt, peers);
  t.same(first.value.folders, [true, false]);
  t.same(first.inventory!.map((h) => [h.file, h.pop]), [[k1, 'calgary-01'], [k2, 'calgary-01'], [single, 'denver-02']]);

  unlinkSync(k1);
  t.same(loadKeySet(jwt, peers, { phase: 'reload' }).inventory!.map((h) => h.file), [k2, single], 'a file deleted from the folder');
  unlinkSync(k2);
  t.same(problemPaths(() => loadKeySet(jwt, peers)), ['auth.jwt.public_keys[0].path'], 'start-up: an empty folder is an error');
  const emptied = loadKeySet(jwt, peers, { phase: 'reload' });
  t.same(emptied.value.keys.map((k) => k.pop), ['denver-02'], 'reload: the emptied folder holds no key in force');
  rmSync(folder, { recursive: true });
  t.same(loadKeySet(jwt, peers, { phase: 'reload' }).value.keys.map((k) => k.pop), ['denver-02'], 'a deleted folder too');
  unlinkSync(single);
  t.same(loadKeySet(jwt, peers, { phase: 'reload' }).value.keys, [], 'a deleted key file');
  t.same(problemPaths(() => loadKeySet(jwt, peers)), ['auth.jwt.public_keys[0].path', 'auth.jwt.public_keys[1].path'], 'start-up: missing paths are errors');

  mkdirSync(single);
  write(join(single, 'k.pub'), pem(), 0o644);
  t.same(problemPaths(() => loadKeySet(jwt, peers, { phase: 'reload', folders: first.value.folders })), ['auth.jwt.public_keys[1].path'], 'a folder where a key file was is refused, not read as a key folder');
  rmSync(single, { recursive: true });
  write(single, 'not a key', 0o644);
  t.same(problemPaths(() => loadKeySet(jwt, peers, { phase: 'reload', folders: first.value.folders })), ['auth.jwt.public_keys[1].path'], 'malformed content is refused');
});

t.test('signature keys: a deleted file is a removal at reload, an error at start-up', async (t) => {
  const dir = fresh();
  const [a, b] = [write(join(dir, 'a'), makeHmacKey().text), write(join(dir, 'b'), makeHmacKey().text)];
  const peers = [peer('calgary-01', { signing_keys: [a, b] })];
  t.equal(loadSigningKeySet(peers).inventory!.length, 2);
  unlinkSync(a);
  t.same(problemPaths(() => loadSigningKeySet(peers, 'start')), ['peers[0].signing_keys[0]']);
  const reloaded = loadSigningKeySet(peers, 'reload');
  t.equal(reloaded.value.keys.get('calgary-01')!.length, 1, 'one key left in force');
  t.same(reloaded.inventory!.map((h) => h.key), ['peers[0].signing_keys[1]']);
  mkdirSync(a);
  t.same(problemPaths(() => loadSigningKeySet(peers, 'reload')), ['peers[0].signing_keys[0]'], 'a folder in place of the file is refused');
});

t.test('a revocation list that is deleted keeps the ids in force (refused at reload too)', async (t) => {
  const file = write(join(fresh(), 'revoked'), 'jti-1\n', 0o644);
  t.same([...loadRevokedIds(file, 'reload').value], ['jti-1']);
  unlinkSync(file);
  t.same(problemPaths(() => loadRevokedIds(file, 'reload')), ['auth.jwt.revoked_ids_file'], 'reload: refused, so the list in force stays');
  t.same(problemPaths(() => loadRevokedIds(file, 'start')), ['auth.jwt.revoked_ids_file'], 'start-up: an error');
});

t.test('the source loads at start, then reloads, and reports the files that dropped out', async (t) => {
  const dir = fresh();
  const [a, b] = [write(join(dir, 'a'), generateToken()), write(join(dir, 'b'), generateToken())];
  const peers = [peer('calgary-01', { token_files: [a, b] })];
  const phases: string[] = [];
  const reports: ReloadReport[] = [];
  const source = createReloadableSource({
    name: 'bearer tokens',
    load: (phase) => {
      phases.push(phase);
      return loadTokenSet(peers, phase);
    },
    paths: [a, b],
    log: quiet,
    intervalMs: 0,
    watch: false,
    onReload: (r) => reports.push(r),
  });
  t.teardown(() => source.close());
  unlinkSync(a);
  const result = source.reload('SIGHUP');
  t.same(result, { changed: true, removed: [{ key: 'peers[0].token_files[0]', file: a, pop: 'calgary-01' }] });
  t.same(reports.at(-1), { source: 'bearer tokens', trigger: 'SIGHUP', outcome: 'ok', removed: result.removed });
  t.same(source.reload('interval'), { changed: false }, 'still gone: unchanged, reported once');
  write(b, '');
  t.same(source.reload('SIGHUP').removed?.map((h) => h.key), ['peers[0].token_files[1]'], 'an emptied slot is a removal too');
  write(a, generateToken());
  t.same(source.reload('SIGHUP'), { changed: true }, 'a file back is a plain reload');
  t.same(phases, ['start', 'reload', 'reload', 'reload', 'reload']);
});

t.test('the JWT stage: a cached token is refused once its key is removed (the cache goes with the swap)', async (t) => {
  const dir = fresh();
  const keys = join(dir, 'keys');
  mkdirSync(keys, { mode: 0o755 });
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keyFile = write(join(keys, 'calgary.pub'), pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(), 0o644);
  write(join(dir, 'cert.pem'), 'x', 0o644);
  write(join(dir, 'key.pem'), 'x');
  const { config } = parseConfig(`
pop_id: zurich-01
role: backup
tls: { cert_file: cert.pem, key_file: key.pem, client_ca_file: cert.pem }
upstream: { url: "http://127.0.0.1:9" }
routes: [{ method: POST, path: /api/replication/apply }]
auth:
  methods: [jwt]
  reload_interval: 0
  jwt: { public_keys: [{ path: keys, alg: ES256, pop: calgary-01 }] }
peers: [{ id: calgary-01, cert: { cn: calgary-01 } }]
`, join(dir, 'replguard.yaml'));
  const stage = createAuthorizationStage({ jwt: createJwtCredential(config, { log: quiet }) });
  t.teardown(() => stage.close());
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({ [CLAIM_NAMESPACE]: { routes: ['POST /api/replication/apply'] } })
    .setProtectedHeader({ alg: 'ES256', kid: jwkThumbprint(pair.publicKey) })
    .setIssuer('replguard').setAudience('zurich-01').setSubject('calgary-01').setIssuedAt(now).setExpirationTime(now + 600).setJti('j-1')
    .sign(pair.privateKey);
  const outcome = async () => {
    const ctx = newRequestContext({
      id: 't', req: { rawHeaders: ['Authorization', `Bearer ${token}`], method: 'POST', url: '/api/replication/apply', headers: {} } as unknown as IncomingMessage,
      res: undefined as never, conn: newConnection({ remoteAddress: '127.0.0.1', remotePort: 1 }), startedAt: 0, path: '/api/replication/apply',
    });
    try {
      await stage.run(ctx);
      return 'ok';
    } catch (err) {
      if (err instanceof Rejection) return err.reason;
      throw err;
    }
  };
  t.equal(await outcome(), 'ok', 'verified');
  t.equal(await outcome(), 'ok', 'and now cached');
  unlinkSync(keyFile);
  t.same(stage.reload('SIGHUP').map((r) => r.removed?.map((h) => h.pop)), [['calgary-01']], 'the reload took the key out');
  t.equal(await outcome(), 'AUTH_JWT_KEY_UNKNOWN', 'the cached token is refused');
});
