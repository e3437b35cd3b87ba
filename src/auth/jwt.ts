
import { LRUCache } from 'lru-cache';
import { entryBound } from '../core/lru.ts';
import { ConfigError } from '../config/errors.ts';
import type { Config } from '../config/schema.ts';
import type { OperationalLog } from '../log/operational.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { Rejection } from '../pipeline/reasons.ts';
import { createReloadableSource, type ReloadableSource, type ReloadListener } from '../reload/source.ts';
import { isJwtShaped, type CredentialVerifier } from './authorization.ts';
import { agreeIdentity } from './identity.ts';
import { routeKey } from './jwt-claims.ts';
import { credentialHash } from '../crypto/secret-compare.ts';
import { loadKeySet, loadRevokedIds, type KeySet } from './jwt-keys.ts';
import { createJwtVerifier, type VerifiedToken } from './jwt-verify.ts';

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
  const cache = jwt.cache_max_entries > 0 ? new LRUCache<string, VerifiedToken>(entryBound(jwt.cache_max_entries)) : undefined;
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
