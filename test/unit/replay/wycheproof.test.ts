// Project Wycheproof vectors against the verification primitives of v1 (HMAC-SHA256) and v1a
// (Ed25519). Under the scheme's policy a truncated HMAC tag is never valid, whatever the vector
// says (a v1 entry is exactly 32 bytes).
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parseVerifyKey } from '../../../src/replay/keys.ts';
import { hmacSha256, verifyEd25519, verifyHmacSha256 } from '../../../src/replay/signature.ts';

const VECTORS = join(import.meta.dirname, '..', '..', '..', '..', 'shared', 'vectors', 'wycheproof');

interface Suite<G> {
  numberOfTests: number;
  testGroups: G[];
}
interface MacGroup {
  keySize: number;
  tagSize: number;
  tests: Array<{ tcId: number; key: string; msg: string; tag: string; result: 'valid' | 'invalid' | 'acceptable' }>;
}
interface EddsaGroup {
  publicKey: { pk: string };
  publicKeyPem: string;
  tests: Array<{ tcId: number; msg: string; sig: string; result: 'valid' | 'invalid' | 'acceptable'; comment: string }>;
}

function load<G>(name: string): Suite<G> {
  return JSON.parse(readFileSync(join(VECTORS, name), 'utf8')) as Suite<G>;
}

t.test('hmac_sha256_test.json', async (t) => {
  const suite = load<MacGroup>('hmac_sha256_test.json');
  const counts = { total: 0, fullValid: 0, fullInvalid: 0, truncatedRefused: 0, failures: 0 };
  for (const group of suite.testGroups) {
    for (const v of group.tests) {
      counts.total += 1;
      const key = Buffer.from(v.key, 'hex');
      const msg = Buffer.from(v.msg, 'hex');
      const tag = Buffer.from(v.tag, 'hex');
      const got = verifyHmacSha256(key, msg, tag);
      let want: boolean;
      if (group.tagSize !== 256) {
        want = false;
        if (!got) counts.truncatedRefused += 1;
      } else {
        want = v.result === 'valid';
        if (got === want) counts[want ? 'fullValid' : 'fullInvalid'] += 1;
        // The split form the verifier uses (prefix, then body) gives the same MAC.
        if (want) t.ok(hmacSha256(key, msg.subarray(0, 3), msg.subarray(3)).equals(tag), `tcId ${v.tcId} split`);
      }
      if (got !== want) {
        counts.failures += 1;
        t.fail(`tcId ${v.tcId}: got ${got}, want ${want} (tagSize ${group.tagSize})`);
      }
    }
  }
  t.equal(counts.total, suite.numberOfTests, 'every vector ran');
  t.equal(counts.failures, 0);
  t.comment(`HMAC-SHA256: ${counts.total} vectors: ${counts.fullValid} valid accepted, ${counts.fullInvalid} invalid refused (full 32-byte tags), ${counts.truncatedRefused} truncated tags refused by policy`);
});

t.test('ed25519_test.json', async (t) => {
  const suite = load<EddsaGroup>('ed25519_test.json');
  const counts = { total: 0, validAccepted: 0, invalidRefused: 0, failures: 0 };
  for (const group of suite.testGroups) {
    // Both key forms the guard reads: PEM and whpk_ (the raw 32 bytes).
    const keys = [
      createPublicKey(group.publicKeyPem),
      parseVerifyKey(group.publicKeyPem).key,
      parseVerifyKey(`whpk_${Buffer.from(group.publicKey.pk, 'hex').toString('base64')}`).key,
    ];
    for (const v of group.tests) {
      counts.total += 1;
      const want = v.result === 'valid';
      const results = keys.map((k) => verifyEd25519(k, Buffer.from(v.msg, 'hex'), Buffer.from(v.sig, 'hex')));
      if (results.every((r) => r === want)) counts[want ? 'validAccepted' : 'invalidRefused'] += 1;
      else {
        counts.failures += 1;
        t.fail(`tcId ${v.tcId} (${v.comment}): got ${results.join('/')}, want ${want}`);
      }
    }
  }
  t.equal(counts.total, suite.numberOfTests, 'every vector ran');
  t.equal(counts.failures, 0);
  t.comment(`Ed25519: ${counts.total} vectors: ${counts.validAccepted} valid accepted, ${counts.invalidRefused} invalid refused`);
});
