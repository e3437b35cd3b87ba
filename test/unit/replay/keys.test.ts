// Signature keys from files: forms, sizes, algorithms, file modes, one key per POP.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import t from 'tap';
import { KeyFormatError, parseSignKey, parseVerifyKey, publicKeyText, readPeerSigningKeys, readSignKeyFile, readVerifyKeyFile } from '../../../src/replay/keys.ts';
import { makeEd25519Key, makeHmacKey, writeKeyFile } from '../../helpers/signing.ts';

const ed = makeEd25519Key();
const hmac = makeHmacKey();

function formError(fn: () => unknown): string {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return err instanceof KeyFormatError ? 'KeyFormatError' : String(err);
  }
}

t.test('verification keys: whsec_, whpk_, PEM', async (t) => {
  t.equal(parseVerifyKey(hmac.text).version, 'v1');
  t.equal(parseVerifyKey(`  ${hmac.text}\n`).version, 'v1', 'surrounding whitespace is fine');
  t.equal(parseVerifyKey(ed.whpk).version, 'v1a');
  t.equal(parseVerifyKey(ed.publicPem).version, 'v1a');
  t.equal(parseVerifyKey(ed.whpk).id, parseVerifyKey(ed.publicPem).id, 'one key, one id, whatever the form');
  t.equal(publicKeyText(parseSignKey(ed.privatePem)), ed.whpk, 'the signer can print the whpk_ to hand to the guard');
});

t.test('refused verification keys', async (t) => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'pem', type: 'spki' }).toString();
  const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'pem', type: 'spki' }).toString();
  const cases: Array<[string, string]> = [
    ['31 bytes of HMAC key', makeHmacKey(31).text],
    ['16 bytes of HMAC key', makeHmacKey(16).text],
    ['32 zero bytes', `whsec_${Buffer.alloc(32).toString('base64')}`],
    ['32 bytes of an ASCII word', `whsec_${Buffer.from('passwordpasswordpasswordpassword').toString('base64')}`],
    ['a passphrase in base64', `whsec_${Buffer.from('CorrectHorseBatteryStapleIsMyPassword').toString('base64')}`],
    ['16 distinct bytes, twice over', `whsec_${Buffer.from([...Array(16).keys(), ...Array(16).keys()].map((i) => i * 17)).toString('base64')}`],
    ['whsec_ with URL-safe base64', `whsec_-${randomBytes(33).toString('base64url').slice(1)}`],
    ['whsec_ without base64', 'whsec_not base64!'],
    ['whpk_ of 31 bytes', `whpk_${randomBytes(31).toString('base64')}`],
    ['RSA public key', rsa],
    ['P-256 public key', p256],
    ['a private key given to the guard', ed.privatePem],
    ['a whsk_ given to the guard', 'whsk_AAAA'],
    ['a bare secret without prefix', randomBytes(32).toString('base64')],
    ['empty', ''],
  ];
  for (const [name, text] of cases) t.equal(formError(() => parseVerifyKey(text)), 'KeyFormatError', name);
  t.throws(() => parseVerifyKey(`whsec_${Buffer.from('CorrectHorseBatteryStapleIsMyPassword').toString('base64')}`), /weak HMAC secret: estimated at \d+ bits .*at least 128 are required/);
  for (let i = 0; i < 5; i++) t.doesNotThrow(() => parseVerifyKey(makeHmacKey(32).text), 'random 32 bytes pass');
});

t.test('signing keys: whsec_, whsk_ (seed, or seed + public), PEM private', async (t) => {
  const seed = ed.privateKey.export({ format: 'jwk' }).d!;
  const raw = Buffer.from(seed, 'base64url');
  const pub = Buffer.from(ed.whpk.slice(5), 'base64');
  t.equal(parseSignKey(hmac.text).version, 'v1');
  t.equal(publicKeyText(parseSignKey(`whsk_${raw.toString('base64')}`)), ed.whpk);
  t.equal(publicKeyText(parseSignKey(`whsk_${Buffer.concat([raw, pub]).toString('base64')}`)), ed.whpk);
  t.equal(publicKeyText(parseSignKey(ed.privatePem)), ed.whpk);
  t.equal(formError(() => parseSignKey(`whsk_${Buffer.concat([raw, randomBytes(32)]).toString('base64')}`)), 'KeyFormatError', 'seed + wrong public key');
  t.equal(formError(() => parseSignKey(ed.publicPem)), 'KeyFormatError', 'a public key cannot sign');
  t.equal(formError(() => parseSignKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString())), 'KeyFormatError', 'P-256');
});

t.test('files: modes, missing files, problems name the key path', async (t) => {
  t.ok('key' in readVerifyKeyFile(writeKeyFile(hmac.text), 'k'));
  t.ok('key' in readVerifyKeyFile(writeKeyFile(ed.whpk, 0o644), 'k'), 'a public key may be world-readable');
  const open = readVerifyKeyFile(writeKeyFile(makeHmacKey().text, 0o644), 'peers[0].signing_keys[0]');
  t.ok('problem' in open && open.problem.path === 'peers[0].signing_keys[0]' && /readable by others/.test(open.problem.message), 'a world-readable secret is refused');
  t.ok('problem' in readVerifyKeyFile('/nonexistent/key', 'k'));
  t.ok('problem' in readSignKeyFile(writeKeyFile(ed.privatePem, 0o644), 'k'), 'a world-readable private key is refused');
  t.ok('key' in readSignKeyFile(writeKeyFile(ed.privatePem), 'k'));
});

t.test('peers: one key belongs to one POP', async (t) => {
  const shared = writeKeyFile(hmac.text);
  const sameAgain = writeKeyFile(hmac.text);
  const peer = (id: string, signing_keys: string[]) => ({ id, cert: { cn: id }, cert_sha256: [], signing_keys });
  const ok = readPeerSigningKeys([peer('a', [shared, writeKeyFile(ed.whpk, 0o644)]), peer('b', [writeKeyFile(makeHmacKey().text)])]);
  t.same(ok.problems, []);
  t.same([...ok.keys].map(([pop, list]) => [pop, list.map((k) => k.version)]), [['a', ['v1', 'v1a']], ['b', ['v1']]]);
  const dup = readPeerSigningKeys([peer('a', [shared]), peer('b', [sameAgain])]);
  t.same(dup.problems.map((p) => p.path), ['peers[1].signing_keys[0]'], 'the same secret under two POPs');
  const pemAndWhpk = readPeerSigningKeys([peer('a', [writeKeyFile(ed.whpk), writeKeyFile(ed.publicPem)])]);
  t.same(pemAndWhpk.problems.map((p) => p.path), ['peers[0].signing_keys[1]'], 'one Ed25519 key in two forms');
});
