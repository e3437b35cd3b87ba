// The POP registry's verification: a document from HQ is accepted only when a configured key
// signed it, its content keeps the format, its serial does not go back and it has not expired.
// Tampered and forged documents are built by hand (jose will not produce most of them), and
// every refusal is asserted by its code.
import { createPublicKey, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { exportJWK } from 'jose';
import { ConfigError } from '../../../src/config/errors.ts';
import { REGISTRY_TYP, type Registry, type RegistryPayloadInput } from '../../../src/registry/document.ts';
import { generateRegistryKeyPair, loadRegistryKeys, parseRegistrySigningKey, registryKeyThumbprint, type RegistrySigningKey } from '../../../src/registry/keys.ts';
import { checkRole, RegistryError, signRegistry, verifyRegistry, type RegistryRefusalCode } from '../../../src/registry/verify.ts';

const NOW_S = 1_800_000_000;
const now = () => NOW_S * 1000;
const dir = mkdtempSync(join(tmpdir(), 'replguard-registry-'));
const write = (name: string, text: string) => {
  const file = join(dir, name);
  writeFileSync(file, text);
  chmodSync(file, 0o600);
  return file;
};
const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

// Two HQ keys in force at once (a rotation), one of each algorithm, and one nobody configured.
const ed = generateRegistryKeyPair('EdDSA');
const ec = generateRegistryKeyPair('ES256');
const stranger = generateRegistryKeyPair('EdDSA');
const edKey = parseRegistrySigningKey(ed.privatePem);
const ecKey = parseRegistrySigningKey(ec.privatePem);
const strangerKey = parseRegistrySigningKey(stranger.privatePem);
const keys = loadRegistryKeys([write('hq-ed.pub', ed.publicPem), write('hq-ec.pub', ec.publicPem)], 'control_plane.keys');

const WHPK = `whpk_${Buffer.alloc(32, 7).toString('base64')}`;
const doc = (over: Partial<RegistryPayloadInput> = {}): RegistryPayloadInput => ({
  format: 1,
  serial: 10,
  iat: NOW_S - 60,
  exp: NOW_S + 3600,
  pops: [
    { id: 'calgary-01', role: 'primary', replicates_to: ['toronto-01'], cert: { uri_san: 'spiffe://example.org/pop/calgary-01' }, signature_keys: [WHPK] },
    { id: 'toronto-01', role: 'backup', cert: { cn: 'toronto-01' }, cert_sha256: ['AB'.repeat(32)] },
  ],
  ...over,
});

async function refusal(promise: Promise<unknown>): Promise<RegistryRefusalCode | 'accepted'> {
  try {
    await promise;
    return 'accepted';
  } catch (err) {
    if (err instanceof RegistryError) return err.code;
    throw err;
  }
}

/** A compact JWS signed by hand: any header, any payload bytes, with the given raw key. */
function handSigned(header: Record<string, unknown>, payload: string, key: RegistrySigningKey): string {
  const input = `${b64(header)}.${b64(payload)}`;
  const signature = key.alg === 'EdDSA'
    ? cryptoSign(null, Buffer.from(input), key.key)
    : cryptoSign('sha256', Buffer.from(input), { key: key.key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

t.test('a document signed by either configured key is accepted, frozen, with its POPs by id', async (t) => {
  for (const key of [edKey, ecKey]) {
    const registry = await verifyRegistry(await signRegistry(doc(), key), keys, { now });
    t.equal(registry.kid, key.kid);
    t.equal(registry.alg, key.alg);
    t.equal(registry.payload.serial, 10);
    t.same(registry.byId.get('calgary-01')?.replicates_to, ['toronto-01']);
    t.same(registry.byId.get('toronto-01')?.cert_sha256, ['ab'.repeat(32)], 'pins are normalised like the config\'s');
    t.ok(Object.isFrozen(registry.payload.pops[0]), 'nothing in force can be changed by a caller');
  }
});

t.test('a kid none of control_plane.keys names is refused: REGISTRY_KEY_UNKNOWN', async (t) => {
  t.equal(await refusal(verifyRegistry(await signRegistry(doc(), strangerKey), keys, { now })), 'REGISTRY_KEY_UNKNOWN');
  // The stranger's signature under a configured key's kid does not verify.
  const forged = await signRegistry(doc(), { ...strangerKey, kid: edKey.kid });
  t.equal(await refusal(verifyRegistry(forged, keys, { now })), 'REGISTRY_SIGNATURE_INVALID');
  t.equal(await refusal(verifyRegistry(handSigned({ alg: 'EdDSA', typ: REGISTRY_TYP }, JSON.stringify(doc()), edKey), keys, { now })), 'REGISTRY_KEY_UNKNOWN', 'no kid at all');
});

t.test('a tampered document is refused: REGISTRY_SIGNATURE_INVALID', async (t) => {
  const jws = await signRegistry(doc(), edKey);
  const [header, payload, signature] = jws.split('.') as [string, string, string];
  // The payload changed (a backup promoted to primary), signature kept.
  const promoted = JSON.parse(Buffer.from(payload, 'base64url').toString()) as RegistryPayloadInput;
  promoted.pops[1]!.role = 'primary';
  promoted.pops[1]!.replicates_to = [];
  t.equal(await refusal(verifyRegistry(`${header}.${b64(promoted)}.${signature}`, keys, { now })), 'REGISTRY_SIGNATURE_INVALID');
  // One bit of the signature flipped.
  const bytes = Buffer.from(signature, 'base64url');
  bytes[0]! ^= 1;
  t.equal(await refusal(verifyRegistry(`${header}.${payload}.${bytes.toString('base64url')}`, keys, { now })), 'REGISTRY_SIGNATURE_INVALID');
  // The header re-pointed at the other configured key.
  t.equal(await refusal(verifyRegistry(`${b64({ alg: 'EdDSA', kid: ecKey.kid, typ: REGISTRY_TYP })}.${payload}.${signature}`, keys, { now })), 'REGISTRY_SIGNATURE_INVALID');
  // An ES256 key named with alg EdDSA: refused before anything is verified.
  t.equal(await refusal(verifyRegistry(handSigned({ alg: 'EdDSA', kid: ecKey.kid, typ: REGISTRY_TYP }, JSON.stringify(doc()), edKey), keys, { now })), 'REGISTRY_SIGNATURE_INVALID');
});

t.test('headers that are not a registry\'s are refused: REGISTRY_MALFORMED', async (t) => {
  const payload = JSON.stringify(doc());
  const cases: Array<[string, Record<string, unknown>]> = [
    ['no typ (e.g. a JWT)', { alg: 'EdDSA', kid: edKey.kid }],
    ['typ JWT', { alg: 'EdDSA', kid: edKey.kid, typ: 'JWT' }],
    ['alg none', { alg: 'none', kid: edKey.kid, typ: REGISTRY_TYP }],
    ['alg HS256', { alg: 'HS256', kid: edKey.kid, typ: REGISTRY_TYP }],
    ['an embedded jwk', { alg: 'EdDSA', kid: edKey.kid, typ: REGISTRY_TYP, jwk: await exportJWK(createPublicKey(edKey.key)) }],
    ['a jku', { alg: 'EdDSA', kid: edKey.kid, typ: REGISTRY_TYP, jku: 'https://hq.invalid/keys' }],
    ['b64 false', { alg: 'EdDSA', kid: edKey.kid, typ: REGISTRY_TYP, b64: false, crit: ['b64'] }],
  ];
  for (const [name, header] of cases) t.equal(await refusal(verifyRegistry(handSigned(header, payload, edKey), keys, { now })), 'REGISTRY_MALFORMED', name);
  t.equal(await refusal(verifyRegistry('not a jws', keys, { now })), 'REGISTRY_MALFORMED');
  t.equal(await refusal(verifyRegistry(`${(await signRegistry(doc(), edKey))}.extra`, keys, { now })), 'REGISTRY_MALFORMED', 'five parts (JWE-like)');
  t.equal(await refusal(verifyRegistry(handSigned({ alg: 'EdDSA', kid: edKey.kid, typ: REGISTRY_TYP }, '{"format":1,', edKey), keys, { now })), 'REGISTRY_MALFORMED', 'payload not JSON');
});

t.test('signed content that breaks the format is refused: REGISTRY_CONTENT_INVALID', async (t) => {
  const header = { alg: 'EdDSA', kid: edKey.kid, typ: REGISTRY_TYP };
  const base = doc();
  const cases: Array<[string, unknown]> = [
    ['an unknown member', { ...base, admins: ['x'] }],
    ['an unknown POP member', { ...base, pops: [{ ...base.pops[1], unsafe: true }] }],
    ['format 2', { ...base, format: 2 }],
    ['serial 0', { ...base, serial: 0 }],
    ['serial as a string', { ...base, serial: '11' }],
    ['exp before iat', { ...base, exp: base.iat - 1 }],
    ['a POP twice', { ...base, pops: [base.pops[1], base.pops[1]] }],
    ['a backup that replicates', { ...base, pops: [base.pops[0], { ...base.pops[1], replicates_to: ['calgary-01'] }] }],
    ['replicates_to names no listed backup', { ...base, pops: [{ ...base.pops[0], replicates_to: ['nowhere-01'] }, base.pops[1]] }],
    ['an HMAC secret as a signature key', { ...base, pops: [{ ...base.pops[0], signature_keys: [`whsec_${Buffer.alloc(32, 1).toString('base64')}`] }, base.pops[1]] }],
    ['a 31-byte public key', { ...base, pops: [{ ...base.pops[0], signature_keys: [`whpk_${Buffer.alloc(31, 1).toString('base64')}`] }, base.pops[1]] }],
    ['two certificate names', { ...base, pops: [base.pops[0], { ...base.pops[1], cert: { cn: 'a', dns_san: 'b' } }] }],
    ['a bad POP id', { ...base, pops: [{ ...base.pops[1], id: '../etc' }] }],
  ];
  for (const [name, payload] of cases) t.equal(await refusal(verifyRegistry(handSigned(header, JSON.stringify(payload), edKey), keys, { now })), 'REGISTRY_CONTENT_INVALID', name);
  // HQ's own signing refuses the same content, so it never issues what a POP would refuse.
  t.equal(await refusal(signRegistry({ ...base, exp: base.iat }, edKey)), 'REGISTRY_CONTENT_INVALID');
});

t.test('an older serial than the one in force is a rollback; the same serial must be the same bytes', async (t) => {
  const inForce: Registry = await verifyRegistry(await signRegistry(doc({ serial: 10 }), edKey), keys, { now });
  t.equal(await refusal(verifyRegistry(await signRegistry(doc({ serial: 9 }), edKey), keys, { now, inForce })), 'REGISTRY_ROLLBACK');
  t.equal(await refusal(verifyRegistry(await signRegistry(doc({ serial: 10, exp: NOW_S + 7200 }), edKey), keys, { now, inForce })), 'REGISTRY_SERIAL_REUSED');
  const again = await verifyRegistry(await signRegistry(doc({ serial: 10 }), edKey), keys, { now, inForce });
  t.equal(again.digest, inForce.digest, 'the same document again is the one in force (EdDSA is deterministic)');
  t.equal((await verifyRegistry(await signRegistry(doc({ serial: 11 }), ecKey), keys, { now, inForce })).payload.serial, 11, 'a newer serial, by the other HQ key');
});

t.test('an expired document, or one issued in the future, is refused', async (t) => {
  t.equal(await refusal(verifyRegistry(await signRegistry(doc({ iat: NOW_S - 7200, exp: NOW_S }), edKey), keys, { now })), 'REGISTRY_EXPIRED', 'exp is now');
  t.equal(await refusal(verifyRegistry(await signRegistry(doc({ iat: NOW_S - 7200, exp: NOW_S + 1 }), edKey), keys, { now })), 'accepted', 'one second left');
  t.equal(await refusal(verifyRegistry(await signRegistry(doc({ iat: NOW_S + 600 }), edKey), keys, { now })), 'REGISTRY_NOT_YET_VALID');
  t.equal(await refusal(verifyRegistry(await signRegistry(doc({ iat: NOW_S + 30 }), edKey), keys, { now })), 'accepted', 'within the clock tolerance');
});

t.test('role confirmation names what the registry says', async (t) => {
  const registry = await verifyRegistry(await signRegistry(doc(), edKey), keys, { now });
  t.equal(checkRole(registry, 'toronto-01', 'backup'), undefined);
  t.equal(checkRole(registry, 'toronto-01', 'primary')?.code, 'REGISTRY_ROLE_MISMATCH');
  t.equal(checkRole(registry, 'calgary-01', 'backup')?.code, 'REGISTRY_ROLE_MISMATCH');
  t.equal(checkRole(registry, 'denver-02', 'backup')?.code, 'REGISTRY_POP_UNLISTED');
});

t.test('HQ keys: PEM or JWK, EdDSA or ES256 only, public only, kids unique', async (t) => {
  const jwk = { ...(await exportJWK(createPublicKey(ed.privatePem))), kid: 'hq-2026' };
  const set = loadRegistryKeys([write('hq.jwk', JSON.stringify(jwk)), write('hq-ec2.pub', ec.publicPem)], 'control_plane.keys');
  t.same([...set.byKid.keys()], ['hq-2026', ec.kid], 'a JWK kid, else the RFC 7638 thumbprint');
  t.equal(ec.kid, registryKeyThumbprint(createPublicKey(ec.publicPem)));

  const problems = (files: string[]) => {
    try {
      loadRegistryKeys(files, 'control_plane.keys');
      return [];
    } catch (err) {
      t.ok(err instanceof ConfigError);
      return (err as ConfigError).problems.map((p) => p.path);
    }
  };
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const privateJwk = await exportJWK(edKey.key as KeyObject);
  t.same(problems([write('rsa.pub', rsa)]), ['control_plane.keys[0]'], 'RSA');
  t.same(problems([write('p384.pub', p384)]), ['control_plane.keys[0]'], 'P-384');
  t.same(problems([write('hq.key', ed.privatePem)]), ['control_plane.keys[0]'], 'a private PEM');
  t.same(problems([write('hq-private.jwk', JSON.stringify(privateJwk))]), ['control_plane.keys[0]'], 'a private JWK');
  t.same(problems([write('ed-es.jwk', JSON.stringify({ ...jwk, alg: 'ES256' }))]), ['control_plane.keys[0]'], 'a JWK alg that does not fit its key');
  t.same(problems([write('a.pub', ed.publicPem), write('b.pub', ed.publicPem)]), ['control_plane.keys[1]'], 'the same key twice');
  t.same(problems([join(dir, 'missing.pub')]), ['control_plane.keys[0]'], 'a missing file');
  t.same(problems([]), ['control_plane.keys'], 'no key at all');
});
