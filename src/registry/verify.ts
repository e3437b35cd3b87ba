/**
 * Verifying and issuing a registry (JWS compact serialization, RFC 7515, through jose). A
 * document is refused, with one code of REGISTRY_REFUSALS, when its key is not one of
 * `control_plane.keys`, its signature does not verify, its content breaks the format, its serial
 * is older than the one in force (rollback) or equal to it with other bytes, or it has expired.
 * A refusal never changes what is in force: the caller keeps the old copy.
 */
import { createHash } from 'node:crypto';
import { CompactSign, compactVerify, decodeProtectedHeader, errors as joseErrors } from 'jose';
import { formatPath } from '../config/errors.ts';
import { REGISTRY_ALGORITHMS, REGISTRY_TYP, registryPayloadSchema, type Registry, type RegistryAlgorithm, type RegistryPayloadInput } from './document.ts';
import type { RegistryKeySet, RegistrySigningKey } from './keys.ts';

/** Why a document was refused (the audit event's reason; docs/control-plane.md lists them). */
export const REGISTRY_REFUSALS = [
  /** Not a compact JWS, too large, a header this version does not accept, or not JSON. */
  'REGISTRY_MALFORMED',
  /** Its `kid` names none of the configured HQ keys. */
  'REGISTRY_KEY_UNKNOWN',
  /** The signature does not verify with the named key (or the key is for another algorithm). */
  'REGISTRY_SIGNATURE_INVALID',
  /** Signed, but the payload breaks the format (unknown member, duplicate POP, ...). */
  'REGISTRY_CONTENT_INVALID',
  /** Its serial is older than the document in force. */
  'REGISTRY_ROLLBACK',
  /** Its serial is the one in force but its bytes differ: HQ issued two documents with one serial. */
  'REGISTRY_SERIAL_REUSED',
  /** Its `exp` has passed. */
  'REGISTRY_EXPIRED',
  /** Its `iat` is later than now (beyond the clock tolerance). */
  'REGISTRY_NOT_YET_VALID',
  /** The source could not be read (file missing or unreadable). */
  'REGISTRY_UNREADABLE',
] as const;
export type RegistryRefusalCode = (typeof REGISTRY_REFUSALS)[number];

/** A refused document: `code` for audit and metrics, `message` for the operator (never a secret). */
export class RegistryError extends Error {
  override name = 'RegistryError';
  constructor(readonly code: RegistryRefusalCode, message: string) {
    super(message);
  }
}

/** Largest document read, in bytes: 10,000 POPs fit in well under it. */
export const MAX_REGISTRY_BYTES = 8 * 1024 * 1024;

// Header members that would make jose (or another reader) take the key or the payload from
// somewhere else than the config and the JWS itself: never accepted.
const FORBIDDEN_HEADER = ['jku', 'jwk', 'x5u', 'x5c', 'crit', 'b64'] as const;

export interface VerifyRegistryOptions {
  /** The clock, in ms. */
  readonly now: () => number;
  /** The document in force, if any: a new one must not roll its serial back. */
  readonly inForce?: Registry;
  /** How far `iat` may be ahead of the clock. Default 60 s. */
  readonly clockToleranceMs?: number;
  /**
   * Accept a document past its `exp`: only for the on-disk cache, whose serial stays the
   * rollback floor after it expired (registry/cache.ts). Such a document never serves.
   */
  readonly allowExpired?: boolean;
}

/** Verifies a registry document. Throws a RegistryError; returns it frozen otherwise. */
export async function verifyRegistry(jws: string, keys: RegistryKeySet, options: VerifyRegistryOptions): Promise<Registry> {
  if (Buffer.byteLength(jws) > MAX_REGISTRY_BYTES) throw new RegistryError('REGISTRY_MALFORMED', `larger than ${MAX_REGISTRY_BYTES} bytes`);
  const text = jws.trim();
  let header: Record<string, unknown>;
  try {
    header = decodeProtectedHeader(text) as Record<string, unknown>;
  } catch {
    throw new RegistryError('REGISTRY_MALFORMED', 'not a JWS in compact serialization');
  }
  if (text.split('.').length !== 3) throw new RegistryError('REGISTRY_MALFORMED', 'not a JWS in compact serialization');
  if (header.typ !== REGISTRY_TYP) throw new RegistryError('REGISTRY_MALFORMED', `its typ is ${JSON.stringify(header.typ)}, not "${REGISTRY_TYP}"`);
  const forbidden = FORBIDDEN_HEADER.filter((member) => header[member] !== undefined);
  if (forbidden.length > 0) throw new RegistryError('REGISTRY_MALFORMED', `its header carries ${forbidden.join(', ')}; keys come from control_plane.keys only`);
  if (!(REGISTRY_ALGORITHMS as readonly unknown[]).includes(header.alg)) throw new RegistryError('REGISTRY_MALFORMED', `algorithm ${JSON.stringify(header.alg)} is not EdDSA or ES256`);
  if (typeof header.kid !== 'string') throw new RegistryError('REGISTRY_KEY_UNKNOWN', 'its header names no kid');
  const key = keys.byKid.get(header.kid);
  if (!key) throw new RegistryError('REGISTRY_KEY_UNKNOWN', `kid ${JSON.stringify(header.kid.slice(0, 128))} is none of control_plane.keys`);
  if (key.alg !== header.alg) throw new RegistryError('REGISTRY_SIGNATURE_INVALID', `key ${key.kid} verifies ${key.alg}, the header says ${String(header.alg)}`);

  let payloadBytes: Uint8Array;
  try {
    payloadBytes = (await compactVerify(text, key.key, { algorithms: [key.alg] })).payload;
  } catch (err) {
    if (err instanceof joseErrors.JWSSignatureVerificationFailed) throw new RegistryError('REGISTRY_SIGNATURE_INVALID', `the signature does not verify with key ${key.kid}`);
    throw new RegistryError('REGISTRY_MALFORMED', `not a valid JWS (${(err as { code?: string }).code ?? 'unreadable'})`);
  }

  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(payloadBytes).toString('utf8'));
  } catch {
    throw new RegistryError('REGISTRY_MALFORMED', 'its payload is not JSON');
  }
  const parsed = registryPayloadSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 5).map((i) => `${formatPath(i.path) || '(payload)'}: ${i.message}`);
    throw new RegistryError('REGISTRY_CONTENT_INVALID', issues.join('; '));
  }
  const payload = parsed.data;
  const digest = createHash('sha256').update(text).digest('hex');

  const now = options.now();
  if (now >= payload.exp * 1000 && options.allowExpired !== true) throw new RegistryError('REGISTRY_EXPIRED', `serial ${payload.serial} expired at ${new Date(payload.exp * 1000).toISOString()}`);
  if (payload.iat * 1000 > now + (options.clockToleranceMs ?? 60_000)) {
    throw new RegistryError('REGISTRY_NOT_YET_VALID', `serial ${payload.serial} is issued at ${new Date(payload.iat * 1000).toISOString()}, later than this clock`);
  }
  const inForce = options.inForce;
  if (inForce) {
    if (payload.serial < inForce.payload.serial) throw new RegistryError('REGISTRY_ROLLBACK', `serial ${payload.serial} is older than serial ${inForce.payload.serial} in force`);
    if (payload.serial === inForce.payload.serial && digest !== inForce.digest) {
      throw new RegistryError('REGISTRY_SERIAL_REUSED', `serial ${payload.serial} is in force with other content; HQ must issue a new serial for every change`);
    }
  }
  return freezeRegistry(payload, key.kid, key.alg, digest);
}

function freezeRegistry(payload: Registry['payload'], kid: string, alg: RegistryAlgorithm, digest: string): Registry {
  const deep = <T>(value: T): T => {
    if (value !== null && typeof value === 'object') {
      for (const child of Object.values(value)) deep(child);
      Object.freeze(value);
    }
    return value;
  };
  deep(payload);
  return Object.freeze({ payload, kid, alg, digest, byId: new Map(payload.pops.map((pop) => [pop.id, pop])) });
}

/**
 * Issues a registry: the payload is checked against the format first (HQ never signs a document
 * a POP would refuse), then signed as a compact JWS with `typ`, `alg` and `kid` in its header.
 * Throws a RegistryError (REGISTRY_CONTENT_INVALID) for a bad payload.
 */
export async function signRegistry(input: RegistryPayloadInput, key: RegistrySigningKey): Promise<string> {
  const parsed = registryPayloadSchema.safeParse(input);
  if (!parsed.success) {
    throw new RegistryError('REGISTRY_CONTENT_INVALID', parsed.error.issues.map((i) => `${formatPath(i.path) || '(payload)'}: ${i.message}`).join('; '));
  }
  return new CompactSign(new TextEncoder().encode(JSON.stringify(parsed.data)))
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: REGISTRY_TYP })
    .sign(key.key);
}

/** Why this process may not run as configured under a registry, or undefined when it may. */
export function checkRole(registry: Registry, popId: string, role: 'primary' | 'backup'): { code: 'REGISTRY_POP_UNLISTED' | 'REGISTRY_ROLE_MISMATCH'; message: string } | undefined {
  const entry = registry.byId.get(popId);
  if (!entry) return { code: 'REGISTRY_POP_UNLISTED', message: `pop_id ${popId} is not in registry serial ${registry.payload.serial}` };
  if (entry.role !== role) return { code: 'REGISTRY_ROLE_MISMATCH', message: `registry serial ${registry.payload.serial} says ${popId} is a ${entry.role}, this config says ${role}` };
  return undefined;
}
