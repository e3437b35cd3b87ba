/**
 * JWT authentication (RFC 7519, with the RFC 8725 best current practices), wrapping `jose`.
 *
 * What is checked, in this order (the first failure names the reason code):
 *  1. Shape, before anything is decoded: at most 8 KiB, exactly three segments of canonical
 *     base64url, a header and a claim set that are JSON objects with no repeated member.
 *  2. Header policy: `alg` in the asymmetric allow-list (never HS*, never none, whatever the
 *     token says); no `crit`, no `b64`, no `cty` (so no nested JWT), `typ` absent or JWT, no
 *     `zip`, and no embedded key or key reference (`jwk`, `jku`, `x5u`, `x5c`): those are never
 *     fetched and never trusted.
 *  3. Key selection: only keys bound to the token's `sub` (a POP-bound key) or `iss` (an
 *     issuer-bound key) and declared for its `alg`; a `kid` that names a key of another POP is
 *     refused as such.
 *  4. Signature and registered claims by `jose.jwtVerify`: `iss`, `aud`, `sub`, `exp`, `iat`,
 *     `jti` required; `exp`, `nbf`, `iat` (future) and `max_token_age` with the clock tolerance.
 *  5. Ours: `sub` is a configured peer, `jti` is not revoked, the routes claim is well-formed,
 *     `cnf` (if any) is an `x5t#S256` we can check.
 * The stage then checks the certificate binding, identity agreement and the route.
 *
 * Verified tokens are cached by the SHA-256 of the token (never the token) until their `exp` or
 * `max_token_age`, whichever is first; any reload of keys or revoked ids clears the cache.
 *
 * Keys: a missing key file or folder, or an empty folder, is a configuration error at start-up;
 * at a reload it is a removal (those keys are refused from the swap on). The revoked-id list is
 * the opposite: a missing one at a reload is refused and the ids in force stay revoked, since
 * deleting a revocation list must not un-revoke anything.
 */
import { createHash, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { errors as joseErrors, jwtVerify } from 'jose';
import { LRUCache } from 'lru-cache';
import { ConfigError, type ConfigProblem } from '../config/errors.ts';
import { checkReadableFile, checkTrustedPath, isMissing } from '../config/files.ts';
import { JWT_ALGORITHMS, type Config, type JwtAlgorithm, type JwtConfig } from '../config/schema.ts';
import type { OperationalLog } from '../log/operational.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { Rejection } from '../pipeline/reasons.ts';
import { createReloadableSource, type HeldFile, type Loaded, type LoadPhase, type ReloadableSource, type ReloadListener } from '../reload/source.ts';
import { isJwtShaped, type CredentialVerifier } from './authorization.ts';
import { agreeIdentity } from './identity.ts';
import { readRoutesClaim, routeKey } from './jwt-claims.ts';
import { hasRocaFingerprint } from './rsa-roca.ts';
import { credentialHash } from '../crypto/secret-compare.ts';
import { parseJsonObject } from './strict-json.ts';

/** Largest accepted token, in bytes (characters: a compact JWS is ASCII). */
export const MAX_TOKEN_BYTES = 8 * 1024;

const ALLOWED_ALGS: ReadonlySet<string> = new Set(JWT_ALGORITHMS);

// ---------------------------------------------------------------------------------------------
// Keys

/** A verification key in force: checked at load, bound to one POP or one issuer. */
export interface VerificationKey {
  /** The JWK `kid` when the file gave one, else the RFC 7638 thumbprint. Unique across all keys. */
  readonly kid: string;
  readonly alg: JwtAlgorithm;
  readonly key: KeyObject;
  readonly pop?: string;
  readonly issuer?: string;
  /** RFC 7638 thumbprint (base64url SHA-256). */
  readonly thumbprint: string;
  /** The file it came from, for the operational log. */
  readonly file: string;
}

export interface KeySet {
  readonly keys: readonly VerificationKey[];
  readonly byKid: ReadonlyMap<string, VerificationKey>;
  /** Per `public_keys` entry, whether its path was a folder (undefined: removed). */
  readonly folders: ReadonlyArray<boolean | undefined>;
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv'] as const;
const CURVE_FOR_ALG: Partial<Record<JwtAlgorithm, { jwk: string; node: string }>> = {
  ES256: { jwk: 'P-256', node: 'prime256v1' },
  ES384: { jwk: 'P-384', node: 'secp384r1' },
  ES512: { jwk: 'P-521', node: 'secp521r1' },
};

function ktyForAlg(alg: JwtAlgorithm): 'RSA' | 'EC' | 'OKP' {
  if (alg.startsWith('RS') || alg.startsWith('PS')) return 'RSA';
  if (alg.startsWith('ES')) return 'EC';
  return 'OKP';
}

/**
 * Checks one public JWK against the algorithm it is declared for and returns it as a KeyObject.
 * Refuses: private or symmetric key material, `use` other than sig, `key_ops` without verify,
 * a JWK `alg` other than the declared one, a key type or curve that does not fit the algorithm,
 * an invalid point, RSA under 2048 bits, an exponent other than 65537, a ROCA modulus, and a
 * `x5u` reference (never fetched). Throws an Error whose message says why.
 */
export function checkVerificationJwk(jwk: Record<string, unknown>, alg: JwtAlgorithm): KeyObject {
  if (!ALLOWED_ALGS.has(alg)) throw new Error(`algorithm ${String(alg)} is not accepted`);
  if (jwk.kty === 'oct') throw new Error('a symmetric (oct) key: HMAC algorithms are not accepted; use an asymmetric key');
  if (PRIVATE_MEMBERS.some((m) => jwk[m] !== undefined)) throw new Error('it contains private key material; configure the public key only');
  if (jwk.use !== undefined && jwk.use !== 'sig') throw new Error(`its "use" is ${JSON.stringify(jwk.use)}, not "sig"`);
  if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify'))) throw new Error('its "key_ops" does not include "verify"');
  if (jwk.alg !== undefined && jwk.alg !== alg) throw new Error(`it declares alg ${JSON.stringify(jwk.alg)}, but the entry says ${alg}`);
  if (jwk.x5u !== undefined) throw new Error('it has an "x5u" URL; keys are never fetched, give the key itself');
  const kty = ktyForAlg(alg);
  if (jwk.kty !== kty) throw new Error(`a ${String(jwk.kty)} key cannot verify ${alg} (needs ${kty})`);

  let key: KeyObject;
  try {
    key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
  } catch (err) {
    throw new Error(`not a valid ${kty} public key (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const details = key.asymmetricKeyDetails ?? {};
  if (kty === 'RSA') {
    if (key.asymmetricKeyType !== 'rsa') throw new Error(`an ${String(key.asymmetricKeyType)} key; use a plain RSA (rsaEncryption) key`);
    if ((details.modulusLength ?? 0) < 2048) throw new Error(`RSA key of ${details.modulusLength} bits; at least 2048 are required`);
    if (details.publicExponent !== 65537n) throw new Error(`RSA public exponent ${String(details.publicExponent)}; only 65537 is accepted`);
    const n = BigInt(`0x${Buffer.from(String(jwk.n), 'base64url').toString('hex')}`);
    if (hasRocaFingerprint(n)) throw new Error('RSA modulus has the ROCA fingerprint (CVE-2017-15361): its private key can be recovered; replace the key');
  } else if (kty === 'EC') {
    const curve = CURVE_FOR_ALG[alg]!;
    if (jwk.crv !== curve.jwk || details.namedCurve !== curve.node) throw new Error(`curve ${String(jwk.crv)} cannot verify ${alg} (needs ${curve.jwk})`);
  } else if (key.asymmetricKeyType !== 'ed25519') {
    throw new Error(`an ${String(key.asymmetricKeyType)} key cannot verify EdDSA here (needs Ed25519)`);
  }
  return key;
}

/**
 * RFC 7638 JWK thumbprint: base64url SHA-256 of the required members in lexicographic order.
 * Hand-written because jose's calculateJwkThumbprint is async (WebCrypto) and key loading is
 * synchronous, so that a reload swaps in one step; a unit test checks both agree.
 */
export function jwkThumbprint(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  const members = jwk.kty === 'RSA' ? { e: jwk.e, kty: jwk.kty, n: jwk.n }
    : jwk.kty === 'EC' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }
    : { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/g;

/**
 * The keys of one file: PEM `PUBLIC KEY` blocks, or a JWK / JWK Set (JSON). Each is checked
 * against `alg`; the first problem throws.
 */
export function parseKeyFile(text: string, alg: JwtAlgorithm): Array<{ kid: string; key: KeyObject; thumbprint: string }> {
  const out: Array<{ kid: string; key: KeyObject; thumbprint: string }> = [];
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    const parsed = parseJsonObject(Buffer.from(trimmed));
    if (!parsed.ok) throw new Error(`not a JWK or JWK Set (${parsed.problem})`);
    const list = Array.isArray(parsed.value.keys) ? parsed.value.keys : [parsed.value];
    if (list.length === 0) throw new Error('the JWK Set has no keys');
    list.forEach((jwk, i) => {
      if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk)) throw new Error(`keys[${i}] is not a JWK object`);
      const rec = jwk as Record<string, unknown>;
      let key: KeyObject;
      try {
        key = checkVerificationJwk(rec, alg);
      } catch (err) {
        throw new Error(`keys[${i}]: ${(err as Error).message}`);
      }
      if (rec.kid !== undefined && (typeof rec.kid !== 'string' || rec.kid.length === 0 || rec.kid.length > 256)) throw new Error(`keys[${i}]: "kid" is not a string of 1 to 256 characters`);
      const thumbprint = jwkThumbprint(key);
      out.push({ kid: (rec.kid as string | undefined) ?? thumbprint, key, thumbprint });
    });
    return out;
  }
  const blocks = [...text.matchAll(PEM_BLOCK)];
  if (blocks.length === 0) throw new Error('no PEM "PUBLIC KEY" block and not a JWK (JSON)');
  blocks.forEach((block, i) => {
    if (block[1] !== 'PUBLIC KEY') {
      throw new Error(block[1]!.includes('PRIVATE') ? `PEM block ${i + 1} is a private key; configure the public key only (openssl pkey -pubout)` : `PEM block ${i + 1} is a ${block[1]}; only "PUBLIC KEY" (SPKI) blocks are accepted`);
    }
    let spki: KeyObject;
    try {
      spki = createPublicKey(block[0]);
    } catch (err) {
      throw new Error(`PEM block ${i + 1} is not a public key (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    if (spki.asymmetricKeyType === 'rsa-pss') throw new Error(`PEM block ${i + 1} is an RSASSA-PSS-only key; use a plain RSA (rsaEncryption) key, which PS* accepts`);
    let key: KeyObject;
    try {
      key = checkVerificationJwk(spki.export({ format: 'jwk' }) as Record<string, unknown>, alg);
    } catch (err) {
      throw new Error(`PEM block ${i + 1}: ${(err as Error).message}`);
    }
    const thumbprint = jwkThumbprint(key);
    out.push({ kid: thumbprint, key, thumbprint });
  });
  return out;
}

/**
 * The files of a key entry: the file itself, or the regular files of a folder (dot-names
 * skipped, which also skips a Kubernetes volume's `..data`). At a reload, names that are gone
 * (a dangling link the kubelet has not removed yet) are left out.
 */
function keyFiles(path: string, phase: LoadPhase): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .filter((name) => !name.startsWith('.'))
    .sort()
    .map((name) => join(path, name))
    .filter((file) => !(phase === 'reload' && isMissing(file)) && statSync(file).isFile());
}

export interface KeySetOptions {
  /** `'reload'`: a missing file or folder, or an empty folder, is a removal, not a problem. */
  readonly phase?: LoadPhase;
  /**
   * What each entry was at the first load (KeySet.folders): an entry that was a file and is now
   * a folder (or the other way round) is refused as unusable, never read as something else.
   */
  readonly folders?: ReadonlyArray<boolean | undefined>;
}

/** Reads and checks every configured key, all or nothing. Throws a ConfigError with every problem. */
export function loadKeySet(jwt: Pick<JwtConfig, 'public_keys' | 'issuer'>, peerIds: ReadonlySet<string>, options: KeySetOptions = {}): Loaded<KeySet> {
  const phase = options.phase ?? 'start';
  const problems: ConfigProblem[] = [];
  const keys: VerificationKey[] = [];
  const byKid = new Map<string, VerificationKey>();
  const inventory: HeldFile[] = [];
  const folders: Array<boolean | undefined> = [];
  jwt.public_keys.forEach((entry, i) => {
    const at = `auth.jwt.public_keys[${i}]`;
    if (entry.pop !== undefined && !peerIds.has(entry.pop)) problems.push({ path: `${at}.pop`, message: `"${entry.pop}" is not a configured peer id` });
    if (entry.issuer !== undefined && !jwt.issuer.includes(entry.issuer)) problems.push({ path: `${at}.issuer`, message: `"${entry.issuer}" is not listed in auth.jwt.issuer` });
    if (phase === 'reload' && isMissing(entry.path)) {
      folders.push(undefined);
      return; // removed: every key of this entry goes out of force
    }
    let files: string[];
    let folder: boolean;
    try {
      folder = statSync(entry.path).isDirectory();
      files = keyFiles(entry.path, phase);
    } catch (err) {
      problems.push({ path: `${at}.path`, message: `${entry.path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}` });
      return;
    }
    folders.push(folder);
    const was = options.folders?.[i];
    if (was !== undefined && was !== folder) {
      problems.push({ path: `${at}.path`, message: `${entry.path} was a ${was ? 'folder' : 'file'} and is now a ${folder ? 'folder' : 'file'}; put back what the config means, or change the config` });
      return;
    }
    if (folder) {
      const unsafe = checkTrustedPath(entry.path, `${at}.path`, 'folder');
      if (unsafe) {
        problems.push(unsafe);
        return;
      }
    }
    if (files.length === 0 && phase === 'start') problems.push({ path: `${at}.path`, message: `${entry.path} holds no key files` });
    for (const file of files) {
      const unreadable = checkReadableFile(file, `${at}.path`);
      if (unreadable) {
        problems.push(unreadable);
        continue;
      }
      try {
        const before = keys.length;
        for (const parsed of parseKeyFile(readFileSync(file, 'utf8'), entry.alg)) {
          const key: VerificationKey = { ...parsed, alg: entry.alg, file, ...(entry.pop !== undefined ? { pop: entry.pop } : { issuer: entry.issuer! }) };
          const other = byKid.get(key.kid);
          if (other) {
            problems.push({ path: `${at}.path`, message: `${file}: key id ${key.kid} is also in ${other.file}; a key (and a kid) must belong to one POP or issuer` });
            continue;
          }
          byKid.set(key.kid, key);
          keys.push(key);
        }
        if (keys.length > before) inventory.push({ key: `${at}.path`, file, ...(entry.pop !== undefined ? { pop: entry.pop } : {}) });
      } catch (err) {
        problems.push({ path: `${at}.path`, message: `${file}: ${(err as Error).message}` });
      }
    }
  });
  if (problems.length > 0) throw new ConfigError(problems);
  const fingerprint = createHash('sha256')
    .update(JSON.stringify(keys.map((k) => [k.kid, k.alg, k.pop ?? null, k.issuer ?? null, k.thumbprint])))
    .digest('hex');
  return { value: { keys, byKid, folders }, fingerprint, inventory };
}

/**
 * The revoked token ids: one per line, blank lines and `#` comments ignored. Missing is refused
 * at a reload too, with the ids in force kept: a deleted list must not un-revoke them.
 */
export function loadRevokedIds(file: string | undefined, phase: LoadPhase = 'start'): Loaded<ReadonlySet<string>> {
  if (file === undefined) return { value: new Set(), fingerprint: '' };
  if (phase === 'reload' && isMissing(file)) {
    throw new ConfigError([{ path: 'auth.jwt.revoked_ids_file', message: `${file} does not exist: the ids revoked in force stay revoked (deleting a revocation list never un-revokes); to clear the list, empty the file` }]);
  }
  const unreadable = checkReadableFile(file, 'auth.jwt.revoked_ids_file');
  if (unreadable) throw new ConfigError([unreadable]);
  const text = readFileSync(file, 'utf8');
  const ids = new Set<string>();
  const problems: ConfigProblem[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    if (line.length > 256 || /[\x00-\x1f\x7f]/.test(line)) {
      problems.push({ path: 'auth.jwt.revoked_ids_file', message: `${file} line ${i + 1}: not a token id (1 to 256 printable characters)` });
      return;
    }
    ids.add(line);
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return { value: ids, fingerprint: createHash('sha256').update([...ids].sort().join('\n')).digest('hex') };
}

// ---------------------------------------------------------------------------------------------
// The JWS layer: shape and header policy

export interface JwsParts {
  readonly header: Record<string, unknown>;
  readonly alg: JwtAlgorithm;
  readonly kid: string | undefined;
  /** The decoded payload bytes (not yet trusted). */
  readonly payload: Buffer;
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;
const REFUSED_HEADERS = ['crit', 'b64', 'cty', 'zip', 'jwk', 'jku', 'x5u', 'x5c'] as const;

function decodeSegment(segment: string, what: string): Buffer {
  // Canonical base64url only (RFC 7515 section 2: no padding, no other characters, unused bits
  // zero), so that one token has one encoding.
  if (!BASE64URL.test(segment) || segment.length % 4 === 1) throw new Rejection('AUTH_JWT_MALFORMED', `${what} is not base64url`);
  const bytes = Buffer.from(segment, 'base64url');
  if (bytes.toString('base64url') !== segment) throw new Rejection('AUTH_JWT_MALFORMED', `${what} is not canonical base64url`);
  return bytes;
}

/** A printable header value for the audit detail, or a placeholder (never raw client text). */
function shown(value: unknown): string {
  return typeof value === 'string' && /^[A-Za-z0-9+._-]{1,32}$/.test(value) ? value : '(other)';
}

/**
 * Step 1 and 2 of the module comment: the token's shape and header policy, for any compact JWS.
 * Throws a Rejection (AUTH_JWT_MALFORMED or AUTH_JWT_HEADER_REFUSED).
 */
export function checkJwsPolicy(token: string): JwsParts {
  if (token.length > MAX_TOKEN_BYTES) throw new Rejection('AUTH_JWT_MALFORMED', `larger than ${MAX_TOKEN_BYTES} bytes`);
  const segments = token.split('.');
  if (segments.length !== 3) throw new Rejection('AUTH_JWT_MALFORMED', `${segments.length} segments, not 3`);
  const [h, p, s] = segments as [string, string, string];
  const parsed = parseJsonObject(decodeSegment(h, 'the header'));
  if (!parsed.ok) throw new Rejection('AUTH_JWT_MALFORMED', `the header: ${parsed.problem}`);
  const header = parsed.value;
  const alg = header.alg;
  if (typeof alg !== 'string' || !ALLOWED_ALGS.has(alg)) throw new Rejection('AUTH_JWT_HEADER_REFUSED', `alg ${shown(alg)} is not accepted`);
  for (const name of REFUSED_HEADERS) {
    if (header[name] !== undefined) throw new Rejection('AUTH_JWT_HEADER_REFUSED', `header parameter "${name}" is refused`);
  }
  if (header.typ !== undefined && !(typeof header.typ === 'string' && ['jwt', 'application/jwt'].includes(header.typ.toLowerCase()))) {
    throw new Rejection('AUTH_JWT_HEADER_REFUSED', `typ ${shown(header.typ)} is not JWT`);
  }
  const kid = header.kid;
  if (kid !== undefined && (typeof kid !== 'string' || kid.length === 0 || kid.length > 256)) throw new Rejection('AUTH_JWT_MALFORMED', 'kid is not a string of 1 to 256 characters');
  // The header is judged first, so that alg "none" is named as such, not as a missing signature.
  const payload = decodeSegment(p, 'the payload');
  if (decodeSegment(s, 'the signature').length === 0) throw new Rejection('AUTH_JWT_MALFORMED', 'no signature');
  return { header, alg: alg as JwtAlgorithm, kid: kid as string | undefined, payload };
}

// ---------------------------------------------------------------------------------------------
// The JWT layer

export interface VerifiedToken {
  readonly sub: string;
  readonly iss: string;
  readonly jti: string;
  readonly routes: ReadonlySet<string>;
  /** RFC 8705 certificate thumbprint the token is bound to (base64url), if any. */
  readonly certThumbprint: string | undefined;
  /** Epoch ms after which the verification no longer holds (exp or max_token_age, with tolerance). */
  readonly validUntilMs: number;
}

export interface JwtVerifierOptions {
  readonly keys: () => KeySet;
  readonly revoked: () => ReadonlySet<string>;
  readonly issuers: readonly string[];
  readonly audience: string;
  readonly maxTokenAgeMs: number;
  readonly clockToleranceMs: number;
  readonly peerIds: ReadonlySet<string>;
  readonly now: () => number;
}

const REQUIRED_CLAIMS = ['iss', 'aud', 'sub', 'exp', 'iat', 'jti'];

export interface JwtVerifier {
  /** Verifies a token; throws a Rejection naming the precise reason. */
  verify(token: string): Promise<VerifiedToken>;
}

export function createJwtVerifier(options: JwtVerifierOptions): JwtVerifier {
  const toleranceSec = Math.ceil(options.clockToleranceMs / 1000);
  const maxAgeSec = Math.floor(options.maxTokenAgeMs / 1000);
  return {
    async verify(token) {
      const jws = checkJwsPolicy(token);
      const parsed = parseJsonObject(jws.payload);
      if (!parsed.ok) throw new Rejection('AUTH_JWT_MALFORMED', `the claim set: ${parsed.problem}`);
      const unverified = parsed.value;
      const { sub, iss } = unverified;
      if (typeof sub !== 'string' || typeof iss !== 'string') throw new Rejection('AUTH_JWT_CLAIM_INVALID', 'sub and iss must be strings');

      const candidates = selectKeys(options.keys(), jws, sub, iss);
      let claims: Record<string, unknown> | undefined;
      let lastError: unknown;
      for (const key of candidates) {
        try {
          const result = await jwtVerify(token, key.key, {
            algorithms: [key.alg],
            issuer: key.issuer ?? [...options.issuers],
            audience: options.audience,
            requiredClaims: REQUIRED_CLAIMS,
            maxTokenAge: maxAgeSec,
            clockTolerance: toleranceSec,
            currentDate: new Date(options.now()),
          });
          claims = result.payload as Record<string, unknown>;
          break;
        } catch (err) {
          lastError = err;
          // Another candidate may hold the right key only when this one's signature failed.
          if (!(err instanceof joseErrors.JWSSignatureVerificationFailed)) break;
        }
      }
      if (!claims) throw joseRejection(lastError);

      const { jti, iat, exp } = claims as { jti: unknown; iat: number; exp: number };
      if (typeof jti !== 'string' || jti.length === 0 || jti.length > 256) throw new Rejection('AUTH_JWT_CLAIM_INVALID', 'jti is not a string of 1 to 256 characters');
      if (!options.peerIds.has(sub)) throw new Rejection('AUTH_JWT_PEER_UNKNOWN', 'sub names no configured peer');
      if (options.revoked().has(jti)) throw new Rejection('AUTH_JWT_REVOKED', 'jti is revoked');
      const routes = readRoutesClaim(claims);
      if ('problem' in routes) throw new Rejection('AUTH_JWT_CLAIM_INVALID', routes.problem);
      const certThumbprint = readCnf(claims.cnf);
      const validUntilMs = Math.min(exp * 1000 + options.clockToleranceMs, (iat + maxAgeSec) * 1000 + options.clockToleranceMs);
      return { sub, iss, jti, routes: routes.routes, certThumbprint, validUntilMs };
    },
  };
}

function selectKeys(set: KeySet, jws: JwsParts, sub: string, iss: string): VerificationKey[] {
  const boundHere = (k: VerificationKey) => (k.pop !== undefined ? k.pop === sub : k.issuer === iss);
  if (jws.kid !== undefined) {
    const key = set.byKid.get(jws.kid);
    if (!key || key.alg !== jws.alg) throw new Rejection('AUTH_JWT_KEY_UNKNOWN', `no ${jws.alg} key has this kid`);
    if (!boundHere(key)) throw new Rejection('AUTH_JWT_KEY_NOT_BOUND', `the kid names a key of ${key.pop !== undefined ? `POP ${key.pop}` : 'another issuer'}`);
    return [key];
  }
  const keys = set.keys.filter((k) => k.alg === jws.alg && boundHere(k));
  if (keys.length === 0) throw new Rejection('AUTH_JWT_KEY_UNKNOWN', `no ${jws.alg} key is bound to this sub or iss`);
  return keys;
}

/** RFC 8705 section 3.1: `cnf: {"x5t#S256": base64url SHA-256 of the DER certificate}`. */
function readCnf(cnf: unknown): string | undefined {
  if (cnf === undefined) return undefined;
  if (cnf === null || typeof cnf !== 'object' || Array.isArray(cnf)) throw new Rejection('AUTH_JWT_CLAIM_INVALID', 'cnf is not an object');
  const members = Object.keys(cnf);
  const x5t = (cnf as Record<string, unknown>)['x5t#S256'];
  // A confirmation method we cannot check would be ignored if accepted: refuse it (RFC 7800 section 3).
  if (members.length !== 1 || typeof x5t !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(x5t)) {
    throw new Rejection('AUTH_JWT_CLAIM_INVALID', 'cnf is not exactly {"x5t#S256": <base64url SHA-256>}');
  }
  return x5t;
}

function joseRejection(err: unknown): Rejection {
  const e = err as { code?: string; claim?: string; reason?: string } | undefined;
  switch (e?.code) {
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return new Rejection('AUTH_JWT_SIGNATURE_INVALID', 'signature does not verify');
    case 'ERR_JWT_EXPIRED':
      return e.claim === 'iat' ? new Rejection('AUTH_JWT_TOO_OLD', 'iat is older than max_token_age') : new Rejection('AUTH_JWT_EXPIRED', 'exp has passed');
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (e.reason === 'check_failed' && (e.claim === 'nbf' || e.claim === 'iat')) return new Rejection('AUTH_JWT_NOT_YET_VALID', `${e.claim} is in the future`);
      return new Rejection('AUTH_JWT_CLAIM_INVALID', `${e.claim ?? 'a claim'}: ${e.reason ?? 'invalid'}`);
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return new Rejection('AUTH_JWT_HEADER_REFUSED', 'alg not allowed for the key');
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return new Rejection('AUTH_JWT_MALFORMED', e.code);
    default:
      // Anything else jose throws (e.g. a key it cannot use) is a failed verification: fail closed.
      return new Rejection('AUTH_JWT_SIGNATURE_INVALID', `verification failed (${e?.code ?? 'error'})`);
  }
}

// ---------------------------------------------------------------------------------------------
// The stage

export interface JwtCredentialDeps {
  readonly log: OperationalLog;
  /** Told the result of every reload of the keys and revoked ids (metrics). */
  readonly onReload?: ReloadListener;
  readonly now?: () => number;
}

/**
 * `jwt` in auth.methods: the `Authorization: Bearer` JWT (handed over by the Authorization stage,
 * auth/authorization.ts) must verify (see the module comment),
 * be bound to the client certificate when it says so (or when require_cert_binding is on), name
 * the same POP as the other credentials, and list this method and path in its routes claim.
 * Throws a ConfigError at construction when the keys or the revoked-id list are unusable.
 */
export function createJwtCredential(config: Pick<Config, 'pop_id' | 'peers' | 'auth'>, deps: JwtCredentialDeps): CredentialVerifier {
  const jwt = config.auth.jwt;
  if (!jwt) throw new ConfigError([{ path: 'auth.jwt', message: 'required when auth.methods lists jwt' }]);
  const now = deps.now ?? Date.now;
  const peerIds = new Set(config.peers.map((p) => p.id));
  const cache = jwt.cache_max_entries > 0 ? new LRUCache<string, VerifiedToken>({ max: jwt.cache_max_entries }) : undefined;
  const clear = () => cache?.clear();

  // What each entry was (file or folder) at the first load: a reload never reads it as the other.
  let folders: KeySet['folders'] | undefined;
  const keySource: ReloadableSource<KeySet> = createReloadableSource({
    name: 'JWT public keys',
    load: (phase) => {
      const loaded = loadKeySet(jwt, peerIds, { phase, ...(folders ? { folders } : {}) });
      folders ??= loaded.value.folders;
      return loaded;
    },
    paths: jwt.public_keys.map((k) => k.path),
    // Removed keys must not live on in verified tokens: the cache goes with every swap.
    onSwap: clear,
    log: deps.log,
    onReload: deps.onReload,
    intervalMs: config.auth.reload_interval,
  });
  let revokedSource: ReloadableSource<ReadonlySet<string>> | undefined;
  try {
    revokedSource = jwt.revoked_ids_file !== undefined
      ? createReloadableSource({
        name: 'revoked JWT ids',
        load: (phase) => loadRevokedIds(jwt.revoked_ids_file, phase),
        paths: [jwt.revoked_ids_file],
        onSwap: clear,
        log: deps.log,
        onReload: deps.onReload,
        intervalMs: config.auth.reload_interval,
      })
      : undefined;
  } catch (err) {
    keySource.close();
    throw err;
  }
  const noneRevoked: ReadonlySet<string> = new Set();
  const verifier = createJwtVerifier({
    keys: () => keySource.current(),
    revoked: () => revokedSource?.current() ?? noneRevoked,
    issuers: jwt.issuer,
    audience: jwt.audience ?? config.pop_id,
    maxTokenAgeMs: jwt.max_token_age,
    clockToleranceMs: jwt.clock_tolerance,
    peerIds,
    now,
  });

  const admit = (ctx: RequestContext, token: VerifiedToken) => {
    ctx.jti = token.jti;
    const cert = ctx.conn.peer;
    if (token.certThumbprint !== undefined) {
      // Thumbprints are public values: a plain comparison is fine here.
      const presented = cert ? Buffer.from(cert.sha256, 'hex').toString('base64url') : undefined;
      if (presented !== token.certThumbprint) {
        throw new Rejection('AUTH_JWT_CERT_BINDING_MISMATCH', cert ? 'cnf x5t#S256 is not this client certificate' : 'cnf x5t#S256 but no client certificate');
      }
    } else if (jwt.require_cert_binding) {
      throw new Rejection('AUTH_JWT_CERT_BINDING_MISMATCH', 'no cnf x5t#S256 claim and require_cert_binding is on');
    }
    agreeIdentity(ctx, token.sub, 'jwt');
    if (!token.routes.has(routeKey(ctx.req.method ?? '', ctx.path ?? ''))) throw new Rejection('AUTH_ROUTE_NOT_ALLOWED', 'the routes claim does not list this method and path');
  };

  return {
    name: 'jwt',
    // The routes claim is checked against the normalised path.
    needs: ['path'],
    verify(credential: string, ctx: RequestContext) {
      if (!isJwtShaped(credential)) {
        // Only when bearer is not configured: the Authorization stage gives it secrets otherwise.
        ctx.credentials.push('jwt');
        throw new Rejection('AUTH_JWT_MALFORMED', 'not a JWT (no "." in the credential)');
      }
      ctx.credentials.push('jwt');
      const hash = credentialHash(credential);
      ctx.tokenFingerprint = hash.slice(0, 12);
      const cached = cache?.get(hash);
      if (cached !== undefined) {
        if (cached.validUntilMs > now()) return admit(ctx, cached);
        cache!.delete(hash);
      }
      return verifier.verify(credential).then((token) => {
        cache?.set(hash, token);
        admit(ctx, token);
      });
    },
    reload(trigger) {
      return [keySource.reload(trigger), ...(revokedSource ? [revokedSource.reload(trigger)] : [])];
    },
    close() {
      keySource.close();
      revokedSource?.close();
    },
  };
}
