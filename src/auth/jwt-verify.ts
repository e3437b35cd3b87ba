
import { errors as joseErrors, jwtVerify } from 'jose';
import { Rejection } from '../pipeline/reasons.ts';
import { readRoutesClaim } from './jwt-claims.ts';
import { parseJsonObject } from './strict-json.ts';
import { checkJwsPolicy, type JwsParts } from './jwt-header.ts';
import type { KeySet, VerificationKey } from './jwt-keys.ts';

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
