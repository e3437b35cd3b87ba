// Project Wycheproof JOSE vectors (see /work/shared/vectors/wycheproof/README.md) under replguard's
// policy: every json_web_signature_test.json vector at the JWS layer, every json_web_key_test.json
// key set through the key loader. Expected outcome: Wycheproof's, except that HS* and "none" are
// always invalid here. The JWS layer is the production one: checkJwsPolicy (shape and header
// policy), a key from the production loader, and jose's compact verification restricted to that
// key's one algorithm (what jwtVerify does before it reads the claims).
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { compactVerify } from 'jose';
import { checkJwsPolicy } from '../../../src/auth/jwt-header.ts';
import { checkVerificationJwk, loadKeySet, type KeySet, type VerificationKey } from '../../../src/auth/jwt-keys.ts';
import { JWT_ALGORITHMS, type JwtAlgorithm } from '../../../src/config/schema.ts';

const VECTORS = '/work/shared/vectors/wycheproof';
const dir = mkdtempSync(join(tmpdir(), 'replguard-wycheproof-'));

interface Vector { tcId: number; comment: string; jws: unknown; result: 'valid' | 'invalid' | 'acceptable'; flags: string[] }
interface Group { comment: string; public?: Record<string, unknown>; private?: Record<string, unknown>; tests: Vector[] }

/** The alg a compact JWS names in its header, if it can be read at all. */
function headerAlg(jws: unknown): string | undefined {
  if (typeof jws !== 'string') return undefined;
  try {
    return (JSON.parse(Buffer.from(jws.split('.')[0]!, 'base64url').toString()) as { alg?: unknown }).alg as string | undefined;
  } catch {
    return undefined;
  }
}

const policyAllows = (alg: string | undefined) => alg !== undefined && (JWT_ALGORITHMS as readonly string[]).includes(alg);

/** Our verdict for a JWS given the keys in force; never throws. */
async function verdict(jws: unknown, keyFor: (alg: JwtAlgorithm, kid: string | undefined) => VerificationKey | { key: VerificationKey['key']; alg: JwtAlgorithm } | undefined): Promise<'valid' | 'invalid'> {
  if (typeof jws !== 'string') return 'invalid'; // JSON serialization: compact only
  try {
    const parts = checkJwsPolicy(jws);
    const key = keyFor(parts.alg, parts.kid);
    if (!key || key.alg !== parts.alg) return 'invalid';
    await compactVerify(jws, key.key, { algorithms: [key.alg] });
    return 'valid';
  } catch {
    return 'invalid';
  }
}

const available = existsSync(join(VECTORS, 'json_web_signature_test.json'));

t.test('json_web_signature_test.json at the JWS layer', { skip: available ? false : 'vectors not present' }, async (t) => {
  const file = JSON.parse(readFileSync(join(VECTORS, 'json_web_signature_test.json'), 'utf8')) as { numberOfTests: number; testGroups: Group[] };
  const counts = { total: 0, agree: 0, acceptedValid: 0, refusedInvalid: 0, refusedByAlgPolicy: 0 };
  const divergences: string[] = [];
  for (const group of file.testGroups) {
    const jwk = (group.public ?? group.private)!;
    for (const test of group.tests) {
      counts.total += 1;
      const alg = headerAlg(test.jws);
      // The declared algorithm of the key: its JWK alg, or (when it has none) the one the vector uses.
      const declared = (jwk.alg ?? alg) as JwtAlgorithm;
      const ours = await verdict(test.jws, () => {
        try {
          return { key: checkVerificationJwk(jwk, declared), alg: declared };
        } catch {
          return undefined;
        }
      });
      const expected = test.result === 'valid' && policyAllows(alg) ? 'valid' : 'invalid';
      if (test.result === 'valid' && !policyAllows(alg)) counts.refusedByAlgPolicy += 1;
      if (ours === expected) {
        counts.agree += 1;
        if (ours === 'valid') counts.acceptedValid += 1;
        else counts.refusedInvalid += 1;
      } else {
        const keyAlgMismatch = jwk.alg !== undefined && jwk.alg !== alg;
        divergences.push(`tcId ${test.tcId} (${group.comment}, ${test.comment}, key alg ${String(jwk.alg)}, JWS alg ${String(alg)}${keyAlgMismatch ? ', key-alg mismatch' : ''}): expected ${expected}, got ${ours}`);
      }
    }
  }
  t.equal(counts.total, file.numberOfTests, 'every vector ran');
  t.comment(`JWS vectors: ${counts.total}; agree with Wycheproof under our policy: ${counts.agree} (valid accepted ${counts.acceptedValid}, invalid refused ${counts.refusedInvalid}, of which ${counts.refusedByAlgPolicy} valid-by-Wycheproof HS*/none refused by policy)`);
  for (const d of divergences) t.comment(`divergence: ${d}`);
  // The only divergences allowed are "valid" vectors (RFC 7520 figures) whose JWK declares an alg
  // other than the one the JWS uses ("ES521", which is not even a JWS algorithm, for ES512;
  // "PS256" for PS384). RFC 7517 section 4.4 restricts such a key to its declared alg, jose does
  // too, and Wycheproof's own key test (json_web_key_test tcId 19, 20) expects the refusal.
  // Nothing invalid is ever accepted.
  t.ok(divergences.every((d) => /key-alg mismatch\): expected valid, got invalid/.test(d)), 'no divergence other than keys declared for another alg');
  t.notOk(divergences.some((d) => /expected invalid, got valid/.test(d)), 'no invalid vector accepted');
});

t.test('json_web_key_test.json through the key loader', { skip: available ? false : 'vectors not present' }, async (t) => {
  const file = JSON.parse(readFileSync(join(VECTORS, 'json_web_key_test.json'), 'utf8')) as { numberOfTests: number; testGroups: Group[] };
  let total = 0;
  let agree = 0;
  let setsRefused = 0;
  let sets = 0;
  for (const [g, group] of file.testGroups.entries()) {
    const keySetJson = (group.public ?? group.private)!;
    for (const test of group.tests) {
      total += 1;
      const alg = headerAlg(test.jws);
      let keySet: KeySet | undefined;
      sets += 1;
      if (policyAllows(alg)) {
        const path = join(dir, `set-${g}-${test.tcId}.json`);
        writeFileSync(path, JSON.stringify(keySetJson));
        try {
          keySet = loadKeySet({ issuer: ['wycheproof'], public_keys: [{ path, alg: alg as JwtAlgorithm, issuer: 'wycheproof' }] }, new Set()).value;
        } catch {
          keySet = undefined;
        }
      }
      if (!keySet) setsRefused += 1;
      const ours = keySet
        ? await verdict(test.jws, (a, kid) => (kid !== undefined ? keySet!.byKid.get(kid) : keySet!.keys.find((k) => k.alg === a)))
        : 'invalid';
      const expected = test.result === 'valid' && policyAllows(alg) ? 'valid' : 'invalid';
      t.equal(ours, expected, `tcId ${test.tcId} ${group.comment} (${test.comment})`);
      if (ours === expected) agree += 1;
      if (test.comment === 'rejectsKeyWithRocaVulnerability' || test.comment === 'rejectsPublicExponent1') t.notOk(keySet, `tcId ${test.tcId}: the loader refuses the key set`);
    }
  }
  t.equal(total, file.numberOfTests, 'every vector ran');
  t.comment(`JWK vectors: ${total}; agree with Wycheproof under our policy: ${agree}; key sets refused by the loader: ${setsRefused} of ${sets}`);
});
