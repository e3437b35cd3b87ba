/**
 * The `Authorization` header of one attempt. A minted JWT is new for every attempt (a fresh
 * `jti`, `iat` from the injected clock, `exp` after credentials.jwt.ttl), so a retry minutes later
 * never carries an expired token and no two requests share a `jti`. Claims come from the one
 * builder the guard's tests and `make-jwt` use (auth/jwt-claims.ts).
 */
import { buildClaimSet, routeKey } from '../auth/jwt-claims.ts';
import { mintJwt } from '../auth/jwt-mint.ts';
import type { PrimaryConfig } from '../config/primary-schema.ts';
import { SIGNER_ROUTE } from '../config/primary-schema.ts';
import { credentialFingerprint } from '../crypto/secret-compare.ts';
import type { SignerCredential } from './material.ts';

export interface AttemptCredential {
  /** The header value, or undefined when no credential is configured. */
  readonly authorization: string | undefined;
  /** For the audit log: the JWT's jti (minted tokens) and the credential's fingerprint. */
  readonly jti?: string;
  readonly fingerprint?: string;
}

export async function attemptCredential(
  credential: SignerCredential,
  config: Pick<PrimaryConfig, 'pop_id' | 'backup' | 'credentials'>,
  nowMs: number,
): Promise<AttemptCredential> {
  switch (credential.kind) {
    case 'none':
      return { authorization: undefined };
    case 'bearer':
    case 'jwt-static':
      return { authorization: `Bearer ${credential.token}`, fingerprint: credentialFingerprint(credential.token) };
    case 'jwt': {
      const settings = config.credentials.jwt!;
      const claims = buildClaimSet({
        issuer: settings.issuer,
        pop: config.pop_id,
        audience: config.backup.id,
        routes: [routeKey(SIGNER_ROUTE.method, SIGNER_ROUTE.path)],
        ttlSeconds: Math.round(settings.ttl / 1000),
        now: Math.floor(nowMs / 1000),
        ...(credential.certThumbprint !== undefined ? { certThumbprint: credential.certThumbprint } : {}),
      });
      const token = await mintJwt(credential.key, claims);
      return { authorization: `Bearer ${token}`, jti: claims.jti as string, fingerprint: credentialFingerprint(token) };
    }
  }
}
