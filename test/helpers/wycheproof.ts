/**
 * Project Wycheproof vectors (../shared/vectors/wycheproof) run through the verification code of
 * v1 (HMAC-SHA256) and v1a (Ed25519) on every path it has: the primitives, and findVerifyingKey
 * on the event loop (node:crypto) and off it (WebCrypto). Shared by the tap test
 * (test/unit/replay/wycheproof.test.ts) and the Deno conformance test (test/deno/), so that both
 * runtimes are held to the same vectors by the same code.
 *
 * Under the scheme's policy a truncated HMAC tag is never valid, whatever the vector says (a v1
 * entry is exactly 32 bytes).
 */
import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseVerifyKey } from '../../src/replay/keys.ts';
import { findVerifyingKey, hmacSha256, verifyEd25519, verifyHmacSha256, type SignatureVersion, type VerifyKey } from '../../src/replay/signature.ts';

export const VECTORS = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..', 'shared', 'vectors', 'wycheproof');

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

/** 'large content': the path of signed content from OFF_THREAD_MIN_BYTES on (an HMAC in slices, Ed25519 off the main thread). */
export type VerifyPath = 'primitive' | 'on the event loop' | 'large content';
export const PATHS: readonly VerifyPath[] = ['primitive', 'on the event loop', 'large content'];

export interface VectorRun {
  /** Vectors in the file, and vectors run (each on every path). */
  readonly numberOfTests: number;
  readonly total: number;
  /** Vectors whose outcome was the wanted one on every path. */
  readonly accepted: number;
  readonly refused: number;
  /** Truncated HMAC tags (refused by policy), counted in `refused`. */
  readonly truncatedRefused: number;
  /** One line per vector and path that went wrong. */
  readonly failures: readonly string[];
}

function load<G>(name: string): Suite<G> {
  return JSON.parse(readFileSync(join(VECTORS, name), 'utf8')) as Suite<G>;
}

const EMPTY = Buffer.alloc(0);

/**
 * findVerifyingKey with one entry and one key, forced onto one path: the code the guard runs.
 * Throws when the work did not run where it was sent (the vectors would then prove nothing).
 */
async function viaFind(version: SignatureVersion, key: KeyObject, msg: Buffer, signature: Buffer, path: VerifyPath): Promise<boolean> {
  const verifyKey: VerifyKey = { version, key, id: 'vector' };
  const large = path === 'large content';
  const wanted = !large ? 'at once' : version === 'v1' ? 'in slices' : 'off thread';
  const where: string[] = [];
  const found = await findVerifyingKey([{ version, signature }], EMPTY, msg, [verifyKey], { offThreadMinBytes: large ? 0 : Infinity, onWork: (w) => where.push(w.where) });
  if (where.length !== 1 || where[0] !== wanted) throw new Error(`the check ran ${JSON.stringify(where)}, not ${wanted} (${path})`);
  return found === verifyKey;
}

export async function runHmacVectors(): Promise<VectorRun> {
  const suite = load<MacGroup>('hmac_sha256_test.json');
  let total = 0, accepted = 0, refused = 0, truncatedRefused = 0;
  const failures: string[] = [];
  for (const group of suite.testGroups) {
    for (const v of group.tests) {
      total += 1;
      const key = Buffer.from(v.key, 'hex');
      const msg = Buffer.from(v.msg, 'hex');
      const tag = Buffer.from(v.tag, 'hex');
      const want = group.tagSize === 256 && v.result === 'valid';
      let ok = true;
      for (const path of PATHS) {
        const got = path === 'primitive' ? verifyHmacSha256(key, msg, tag) : await viaFind('v1', createSecretKey(key), msg, tag, path);
        if (got !== want) {
          ok = false;
          failures.push(`HMAC tcId ${v.tcId} ${path}: got ${got}, want ${want} (tagSize ${group.tagSize})`);
        }
      }
      // The split form the synchronous verifier uses (prefix, then body) gives the same MAC.
      if (want && !hmacSha256(key, msg.subarray(0, 3), msg.subarray(3)).equals(tag)) {
        ok = false;
        failures.push(`HMAC tcId ${v.tcId}: the split MAC differs`);
      }
      if (!ok) continue;
      if (want) accepted += 1;
      else {
        refused += 1;
        if (group.tagSize !== 256) truncatedRefused += 1;
      }
    }
  }
  return { numberOfTests: suite.numberOfTests, total, accepted, refused, truncatedRefused, failures };
}

export async function runEd25519Vectors(): Promise<VectorRun> {
  const suite = load<EddsaGroup>('ed25519_test.json');
  let total = 0, accepted = 0, refused = 0;
  const failures: string[] = [];
  for (const group of suite.testGroups) {
    // Every key form the guard reads: PEM and whpk_ (the raw 32 bytes).
    const keys = [
      createPublicKey(group.publicKeyPem),
      parseVerifyKey(group.publicKeyPem).key,
      parseVerifyKey(`whpk_${Buffer.from(group.publicKey.pk, 'hex').toString('base64')}`).key,
    ];
    for (const v of group.tests) {
      total += 1;
      const want = v.result === 'valid';
      const msg = Buffer.from(v.msg, 'hex');
      const sig = Buffer.from(v.sig, 'hex');
      let ok = true;
      for (const [i, key] of keys.entries()) {
        for (const path of PATHS) {
          const got = path === 'primitive' ? verifyEd25519(key, msg, sig) : await viaFind('v1a', key, msg, sig, path);
          if (got !== want) {
            ok = false;
            failures.push(`Ed25519 tcId ${v.tcId} (${v.comment}) key form ${i} ${path}: got ${got}, want ${want}`);
          }
        }
      }
      if (ok) {
        if (want) accepted += 1;
        else refused += 1;
      }
    }
  }
  return { numberOfTests: suite.numberOfTests, total, accepted, refused, truncatedRefused: 0, failures };
}
