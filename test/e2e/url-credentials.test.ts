// Credentials sent where they do not belong, through the real program: a real JWT (from
// make-jwt) and a configured bearer secret in a path segment, a matrix parameter, the fragment,
// a bare query, a named query parameter and the User-Agent. Each URL form is refused with the
// code of where the credential was, before any credential stage reads it; the User-Agent one is
// served and its field cut; and neither credential appears in any line of stdout, audit.file
// or stderr.
import { once } from 'node:events';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { generateToken } from '../../src/cli/gen-token.ts';
import { call } from '../helpers/client.ts';
import { baseConfig, runCli, startGuard, type AuditRecord } from '../helpers/guard.ts';
import { makePki, wireBody } from '../helpers/pki.ts';
import { findSecrets, needlesFromFile, referencedFiles, type Needle } from '../helpers/secrets.ts';
import { rawRequest } from '../helpers/tls-client.ts';
import { startBackup } from '../helpers/upstream.ts';

const pki = makePki([]);
const calgary = pki.client('calgary-01');
const dir = mkdtempSync(join(tmpdir(), 'replguard-url-creds-'));

function secretFile(name: string, content: string, mode = 0o600): string {
  const file = join(dir, name);
  writeFileSync(file, content, { mode });
  chmodSync(file, mode);
  return file;
}

t.test('a credential in the URL or the User-Agent is refused or cut, and never logged', async (t) => {
  const secret = generateToken();
  const tokenFile = secretFile('calgary.token', `${secret}\n`);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keyFile = secretFile('calgary.key', privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  const pubFile = secretFile('calgary.pub', publicKey.export({ type: 'spki', format: 'pem' }).toString(), 0o644);
  const jwtFile = join(dir, 'calgary.jwt');
  const minted = await runCli(['make-jwt', '-k', keyFile, '--pop', 'calgary-01', '--audience', 'zurich-01', '--route', 'POST:/api/replication/apply', '-o', jwtFile]);
  t.equal(minted.code, 0, minted.stderr);
  const jwt = readFileSync(jwtFile, 'utf8').trim();
  t.match(jwt, /^eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+$/, 'a real compact JWT');

  const backup = await startBackup();
  const auditFile = join(dir, 'audit.ndjson');
  const config = baseConfig(pki, backup.url, {
    auth: { methods: ['mtls', 'bearer', 'jwt'], reload_interval: '1h', jwt: { public_keys: [{ path: pubFile, alg: 'ES256', pop: 'calgary-01' }] } },
    peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' }, token_files: [tokenFile] }],
    log: { level: 'debug' },
    audit: { stdout: true, file: auditFile },
  });
  const guard = await startGuard(config);
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });

  const requests = () => guard.audit().filter((e) => e.event.action === 'replication-request');
  const auth = { authorization: `Bearer ${secret}` };
  /** Sends the request line as written (a fragment included) over mTLS; the status it got. */
  const raw = async (target: string, headers: Record<string, string> = auth): Promise<number> => {
    const body = wireBody(calgary);
    const head = Object.entries({ host: 'x', 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), connection: 'close', ...headers })
      .map(([k, v]) => `${k}: ${v}\r\n`).join('');
    return (await rawRequest(guard.port, pki.caFile, `POST ${target} HTTP/1.1\r\n${head}\r\n${body}`, { cert: calgary })).status;
  };

  const cases: Array<{ name: string; target: string; reason: string; path: string }> = [];
  for (const [which, credential] of [['JWT', jwt], ['bearer secret', secret]] as const) {
    cases.push(
      { name: `${which} as a path segment`, target: `/api/replication/${credential}`, reason: 'AUTH_TOKEN_IN_PATH', path: '/api/replication/[Redacted]' },
      { name: `${which} in a matrix parameter`, target: `/api/replication/apply;access_token=${credential}`, reason: 'AUTH_TOKEN_IN_PATH', path: '/api/replication/apply;[Redacted]' },
      { name: `${which} in the fragment`, target: `/api/replication/apply#access_token=${credential}`, reason: 'AUTH_TOKEN_IN_FRAGMENT', path: '/api/replication/apply' },
      { name: `${which} as the fragment`, target: `/api/replication/apply#${credential}`, reason: 'AUTH_TOKEN_IN_FRAGMENT', path: '/api/replication/apply' },
      { name: `${which} as a bare query`, target: `/api/replication/apply?${credential}`, reason: 'AUTH_TOKEN_IN_QUERY', path: '/api/replication/apply' },
      { name: `${which} in a named query parameter`, target: `/api/replication/apply?dry_run=1&token=${credential}`, reason: 'AUTH_TOKEN_IN_QUERY', path: '/api/replication/apply' },
    );
  }
  cases.push({ name: 'JWT with percent-encoded dots in the path', target: `/api/replication/${jwt.replaceAll('.', '%2E')}`, reason: 'AUTH_TOKEN_IN_PATH', path: '/api/replication/[Redacted]' });

  await t.test('each URL form is refused with the code of where the credential was', async (t) => {
    const before = requests().length;
    const forwarded = backup.received().length;
    for (const c of cases) t.equal(await raw(c.target), 400, c.name);
    const events = (await guard.waitForEvents((e) => e.event.action === 'replication-request', before + cases.length)).slice(before);
    cases.forEach((c, i) => {
      const e = events[i]!;
      t.equal(e.event.reason, c.reason, `${c.name}: reason`);
      t.equal(e.event.kind, 'alert', `${c.name}: an alert (the credential must be rotated)`);
      t.equal(e.url.path, c.path, `${c.name}: url.path`);
      t.same(e.replguard.redacted ?? [], c.path.endsWith('[Redacted]') ? ['url.path'] : [], `${c.name}: replguard.redacted`);
      t.notOk('credentials' in e.replguard, `${c.name}: refused before any credential stage`);
      t.match(e.replguard.detail, /^(query parameter "[a-z_]+"|(the credential parameter "[a-z_]+"|a JWT|a long base64 run \(the shape of a bearer secret\)) in (a path segment|a matrix parameter|the query|the fragment))$/, `${c.name}: the detail says what and where, in our words`);
    });
    t.equal(backup.received().length, forwarded, 'nothing reached the upstream');
  });

  await t.test('in the User-Agent the request is served and the field cut', async (t) => {
    const before = requests().length;
    for (const credential of [jwt, secret]) {
      const reply = await call(guard.port, pki.caFile, { cert: calgary, headers: { ...auth, 'user-agent': `replicator/2.1 (${credential})` } });
      t.equal(reply.status, 200);
    }
    const events = (await guard.waitForEvents((e) => e.event.action === 'replication-request', before + 2)).slice(before);
    for (const e of events as AuditRecord[]) {
      t.equal(e.event.reason, 'FORWARDED');
      t.equal(e.user_agent.original, 'replicator/2.1 ([Redacted]');
      t.same(e.replguard.redacted, ['user_agent.original']);
      t.equal(e.url.path, '/api/replication/apply', 'a matched route is logged whole');
    }
    t.notOk(backup.received().at(-1)!.headers.authorization, 'the credential header stays stripped');
  });

  await t.test('no line of stdout, audit.file or stderr holds either credential', async (t) => {
    await guard.stop();
    if (!guard.child.stdout!.readableEnded) await once(guard.child.stdout!, 'end');
    if (!guard.child.stderr!.readableEnded) await once(guard.child.stderr!, 'end');
    const { stdout: out, stderr: err } = guard.output();
    const fileText = readFileSync(auditFile, 'utf8');
    t.ok(out.split('\n').filter(Boolean).length >= cases.length + 2, 'the events were captured');
    t.same(fileText.split('\n').filter(Boolean).map((l) => JSON.parse(l)), out.split('\n').filter(Boolean).map((l) => JSON.parse(l)), 'stdout and audit.file agree');
    const needles: Needle[] = [
      ...referencedFiles(config).filter((f) => f.file !== auditFile).flatMap((f) => needlesFromFile(f.file, f.key)),
      ...needlesFromFile(keyFile, 'the JWT signing key'),
      { source: 'the bearer secret', value: secret },
      { source: 'the JWT', value: jwt },
      // Each segment alone: a spelling with %2E dots must not leak it either.
      ...jwt.split('.').map((segment, i) => ({ source: `JWT segment ${i}`, value: segment })),
      { source: 'the bearer secret (first half)', value: secret.slice(0, 21) },
      { source: 'the bearer secret (second half)', value: secret.slice(21) },
    ];
    t.same(findSecrets(out, needles), [], 'stdout');
    t.same(findSecrets(fileText, needles), [], 'audit.file');
    t.same(findSecrets(err, needles), [], 'stderr');
  });
});
