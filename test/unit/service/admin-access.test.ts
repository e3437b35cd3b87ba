// Who may administer bans (service/admin-access.ts), decided from an injected peer address and
// raw headers: loopback (every written form of 127.0.0.0/8 and ::1) without a token; the token
// from everyone, loopback included, once one is configured. The token file's checks.
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { generateToken } from '../../../src/cli/gen-token.ts';
import { ConfigError } from '../../../src/config/errors.ts';
import { credentialFingerprint } from '../../../src/crypto/secret-compare.ts';
import { decideAdminCaller, isLoopbackPeer, loadAdminToken } from '../../../src/service/admin-access.ts';

const dir = mkdtempSync(join(tmpdir(), 'replguard-admin-token-'));
function tokenFile(name: string, content: string, mode = 0o600): string {
  const file = join(dir, name);
  writeFileSync(file, content, { mode });
  chmodSync(file, mode);
  return file;
}

t.test('loopback peers: 127.0.0.0/8 and ::1, in every form a socket reports them', async (t) => {
  for (const a of ['127.0.0.1', '127.0.0.9', '127.255.255.254', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '::ffff:127.1.2.3', '::ffff:7f00:1', '0:0:0:0:0:ffff:7f00:2']) {
    t.ok(isLoopbackPeer(a), a);
  }
  for (const a of [undefined, '', 'localhost', '10.0.0.1', '128.0.0.1', '126.255.255.255', '0.0.0.0', '::', '::2', '::ffff:10.0.0.1', '::ffff:192.0.2.2',
    '::127.0.0.1', '64:ff9b::7f00:1', 'fe80::1', 'fe80::1%eth0', 'fd00::2', '2001:db8::1', '192.0.2.2', '127.0.0.1.nip.io', ' 127.0.0.1']) {
    t.notOk(isLoopbackPeer(a), String(a));
  }
});

t.test('without a token: loopback callers only, whatever they send', async (t) => {
  t.same(decideAdminCaller({ remoteAddress: '127.0.0.1', rawHeaders: [] }, undefined), { allowed: true, via: 'loopback' });
  t.same(decideAdminCaller({ remoteAddress: '::ffff:127.0.0.1', rawHeaders: ['Authorization', 'Bearer x'] }, undefined), { allowed: true, via: 'loopback' });
  for (const remoteAddress of ['192.0.2.2', '::ffff:192.0.2.2', '10.1.2.3', 'fd00::2', undefined]) {
    const decision = decideAdminCaller({ remoteAddress, rawHeaders: ['Authorization', `Bearer ${generateToken()}`] }, undefined);
    t.equal(decision.allowed, false, String(remoteAddress));
    t.equal(!decision.allowed && decision.reason, 'ADMIN_CALLER_NOT_LOOPBACK', String(remoteAddress));
  }
});

t.test('with a token: the token from every caller, loopback included', async (t) => {
  const secret = generateToken();
  const token = loadAdminToken(tokenFile('good', `${secret}\n`)).value;
  t.equal(token.fingerprint, credentialFingerprint(secret));
  const wrong = generateToken();
  for (const remoteAddress of ['127.0.0.1', '::1', '192.0.2.2', 'fd00::2']) {
    const ask = (rawHeaders: string[]) => decideAdminCaller({ remoteAddress, rawHeaders }, token);
    t.same(ask(['Authorization', `Bearer ${secret}`]), { allowed: true, via: 'admin_token', fingerprint: token.fingerprint }, `${remoteAddress}: the token`);
    t.same(ask(['authorization', `bearer ${secret}`]), { allowed: true, via: 'admin_token', fingerprint: token.fingerprint }, `${remoteAddress}: names and scheme are case-insensitive`);
    t.match(ask([]), { allowed: false, reason: 'ADMIN_TOKEN_MISSING' }, `${remoteAddress}: no header`);
    t.match(ask(['User-Agent', 'curl']), { allowed: false, reason: 'ADMIN_TOKEN_MISSING' }, `${remoteAddress}: other headers only`);
    t.same(ask(['Authorization', `Bearer ${wrong}`]), { allowed: false, reason: 'ADMIN_TOKEN_INVALID', detail: 'not the admin token', fingerprint: credentialFingerprint(wrong) }, `${remoteAddress}: a wrong token`);
    t.match(ask(['Authorization', `Bearer ${secret}x`]), { allowed: false, reason: 'ADMIN_TOKEN_INVALID' }, `${remoteAddress}: one character more`);
    t.match(ask(['Authorization', `Bearer ${secret.slice(0, -1)}`]), { allowed: false, reason: 'ADMIN_TOKEN_INVALID' }, `${remoteAddress}: one character less`);
    t.match(ask(['Authorization', `Basic ${Buffer.from(`a:${secret}`).toString('base64')}`]), { allowed: false, reason: 'ADMIN_TOKEN_INVALID' }, `${remoteAddress}: another scheme`);
    t.match(ask(['Authorization', secret]), { allowed: false, reason: 'ADMIN_TOKEN_INVALID' }, `${remoteAddress}: no scheme`);
    t.match(ask(['Authorization', `Bearer ${secret}`, 'Authorization', `Bearer ${secret}`]), { allowed: false, reason: 'ADMIN_TOKEN_INVALID' }, `${remoteAddress}: repeated`);
    t.match(ask(['Authorization', `Bearer ${secret} `]), { allowed: false, reason: 'ADMIN_TOKEN_INVALID' }, `${remoteAddress}: trailing space`);
  }
  const refused = decideAdminCaller({ remoteAddress: '127.0.0.1', rawHeaders: ['Authorization', `Basic ${secret}`] }, token);
  t.notOk(JSON.stringify(refused).includes(secret), 'a decision never carries the presented secret');
});

t.test('the token file: checked like every secret file, with the key path', async (t) => {
  const problem = (file: string) => {
    try {
      loadAdminToken(file);
      return undefined;
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      t.equal(err.problems.length, 1);
      t.equal(err.problems[0]!.path, 'admin.token_file');
      return err.problems[0]!.message;
    }
  };
  t.equal(problem(tokenFile('ok', generateToken())), undefined);
  t.match(problem(tokenFile('world', generateToken(), 0o644)), /readable by others/);
  t.match(problem(tokenFile('weak', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')), /weak secret: estimated at 0 bits by a conservative estimate, at least 128 are required \(.*repeated pattern.*\); `replguard gen-token --out FILE` makes one/);
  t.match(problem(tokenFile('short', 'Zx81-Tq0')), /weak secret: estimated at \d+ bits .*it is 8 bytes long/);
  t.match(problem(tokenFile('empty', '\n')), /is empty/);
  t.match(problem(tokenFile('jwt', `${generateToken()}.${generateToken()}`)), /must not contain "\."/);
  t.match(problem(join(dir, 'absent')), /does not exist/);
  const same = generateToken();
  const a = loadAdminToken(tokenFile('same1', `${same}\n`));
  const b = loadAdminToken(tokenFile('same2', same));
  t.equal(a.fingerprint, b.fingerprint, 'the reload fingerprint follows the content, not the file');
  t.notOk(a.fingerprint.includes(a.value.digest.toString('hex')), 'and is not the digest the token is compared with');
});
