// Conformance for Deno 2 (node:test + node:assert): the registry's JWS verification through jose
// with node:crypto KeyObjects (src/registry/verify.ts), EdDSA and ES256, so that a guard or a
// signer on Deno accepts what HQ signs and refuses a tampered or unknown-key document as on Node.
// Run: npm run test:deno (deno test discovers *_test.ts; tap ignores them)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateRegistryKeyPair, loadRegistryKeys, parseRegistrySigningKey } from '../../src/registry/keys.ts';
import { RegistryError, signRegistry, verifyRegistry } from '../../src/registry/verify.ts';

const NOW_S = 1_800_000_000;
const now = () => NOW_S * 1000;
const dir = mkdtempSync(join(tmpdir(), 'replguard-registry-deno-'));
const write = (name: string, text: string) => {
  const file = join(dir, name);
  writeFileSync(file, text);
  chmodSync(file, 0o600);
  return file;
};
const doc = { format: 1 as const, serial: 3, iat: NOW_S - 10, exp: NOW_S + 600, pops: [{ id: 'toronto-01', role: 'backup' as const, cert: { cn: 'toronto-01' } }] };

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'accepted';
  } catch (err) {
    if (err instanceof RegistryError) return err.code;
    throw err;
  }
}

for (const alg of ['EdDSA', 'ES256'] as const) {
  test(`${alg}: signed and verified; tampered and unknown-key documents refused`, async () => {
    const pair = generateRegistryKeyPair(alg);
    const keys = loadRegistryKeys([write(`hq-${alg}.pub`, pair.publicPem)], 'control_plane.keys');
    const key = parseRegistrySigningKey(pair.privatePem);
    const jws = await signRegistry(doc, key);
    assert.equal((await verifyRegistry(jws, keys, { now })).payload.serial, 3);
    const [h, , s] = jws.split('.');
    const tampered = Buffer.from(JSON.stringify({ ...doc, serial: 4 })).toString('base64url');
    assert.equal(await code(verifyRegistry(`${h}.${tampered}.${s}`, keys, { now })), 'REGISTRY_SIGNATURE_INVALID');
    const other = parseRegistrySigningKey(generateRegistryKeyPair(alg).privatePem);
    assert.equal(await code(verifyRegistry(await signRegistry(doc, other), keys, { now })), 'REGISTRY_KEY_UNKNOWN');
  });
}
