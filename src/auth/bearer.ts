/**
 * Bearer secrets: each peer lists token files (`peers[].token_files`), one secret per file, all
 * valid at once so that a secret rotates with overlap. The presented `Authorization: Bearer`
 * secret is compared with every configured one in constant time (secret-compare.ts) and names
 * the peer that owns the file.
 *
 * Loading, at start-up and at every reload, all or nothing: each file must exist, not be
 * readable by others nor changeable by anyone but root and this user (config/files.ts), and
 * hold either nothing (a retired slot) or a strong secret (see crypto/secret-strength.ts: at least 128 bits by a conservative estimate) made of
 * RFC 6750 b64token characters without "." (so that it can never be mistaken for a JWT), that
 * the log redaction recognises as a secret (core/redact.ts: not the form of a UUID, a slug or
 * words, which logs keep). One secret must not belong to two peers.
 *
 * A missing file is a configuration error at start-up (a typo must not start a guard that
 * admits nobody); at a reload it is a removal, like an emptied file: that secret is refused from
 * the swap on, on connections already open too (it is looked up per request).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError, type ConfigProblem } from '../config/errors.ts';
import { checkSecretFile, isMissing } from '../config/files.ts';
import type { Config, PeerConfig } from '../config/schema.ts';
import type { OperationalLog } from '../log/operational.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { Rejection } from '../pipeline/reasons.ts';
import { createReloadableSource, type HeldFile, type Loaded, type LoadPhase, type ReloadListener } from '../reload/source.ts';
import { hasTokenShape } from '../core/redact.ts';
import { isJwtShaped, type CredentialVerifier } from './authorization.ts';
import { agreeIdentity } from './identity.ts';
import { credentialFingerprint, digestSecret, findSecret } from '../crypto/secret-compare.ts';
import { secretWeakness } from '../crypto/secret-strength.ts';

export interface BearerToken {
  readonly pop: string;
  /** SHA-256 of the secret: the form it is kept and compared in. */
  readonly digest: Buffer;
  /** credentialFingerprint() of the secret, for the log. */
  readonly fingerprint: string;
  readonly file: string;
}

export interface TokenSet {
  readonly tokens: readonly BearerToken[];
  /** Peers that list token files but have no secret in force (all slots empty). */
  readonly peersWithoutToken: readonly string[];
}

/** RFC 6750 b64token characters, without "." (reserved for JWTs). */
const TOKEN_CHARS = /^[A-Za-z0-9\-_~+/]+=*$/;

/**
 * The secret in a token file, or undefined for an empty file (a retired slot). Only one
 * trailing newline (LF or CRLF) is removed: any other whitespace is part of the file and refused.
 */
export function readTokenFile(file: string, keyPath: string): { secret: string | undefined } | { problem: ConfigProblem } {
  const unsafe = checkSecretFile(file, keyPath);
  if (unsafe) return { problem: unsafe };
  const text = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  if (text === '') return { secret: undefined };
  if (isJwtShaped(text)) return { problem: { path: keyPath, message: `${file}: a bearer secret must not contain "." (that is the shape of a JWT)` } };
  if (!TOKEN_CHARS.test(text)) {
    return { problem: { path: keyPath, message: `${file}: the secret has characters that cannot be sent as a Bearer token (allowed: letters, digits, - _ ~ + / and trailing =); use \`replguard gen-token\`` } };
  }
  const weakness = secretWeakness(text);
  if (weakness) return { problem: { path: keyPath, message: `${file}: weak secret: ${weakness}` } };
  // Otherwise the secret sent by mistake in a URL or a User-Agent would be written to the log.
  if (!hasTokenShape(text)) {
    return { problem: { path: keyPath, message: `${file}: the secret has the form of an identifier or words (a UUID, a slug), which the audit log keeps in paths; use \`replguard gen-token\`` } };
  }
  return { secret: text };
}

/**
 * Reads every peer's token files, all or nothing. Throws a ConfigError with every problem. At
 * `'reload'`, a file that no longer exists holds no secret (a removal) instead of being one.
 */
export function loadTokenSet(peers: readonly PeerConfig[], phase: LoadPhase = 'start'): Loaded<TokenSet> {
  const problems: ConfigProblem[] = [];
  const tokens: BearerToken[] = [];
  const inventory: HeldFile[] = [];
  const peersWithoutToken: string[] = [];
  // Load time, not request time: a lookup by digest here leaks nothing to a client.
  const ownerByDigest = new Map<string, string>();
  peers.forEach((peer, i) => {
    let count = 0;
    peer.token_files.forEach((file, j) => {
      const keyPath = `peers[${i}].token_files[${j}]`;
      if (phase === 'reload' && isMissing(file)) return;
      const read = readTokenFile(file, keyPath);
      if ('problem' in read) {
        problems.push(read.problem);
        return;
      }
      if (read.secret === undefined) return;
      const digest = digestSecret(read.secret);
      const hex = digest.toString('hex');
      const owner = ownerByDigest.get(hex);
      if (owner !== undefined && owner !== peer.id) {
        problems.push({ path: keyPath, message: `${file}: the same secret is also a token of ${owner}; each peer needs its own` });
        return;
      }
      ownerByDigest.set(hex, peer.id);
      tokens.push({ pop: peer.id, digest, fingerprint: credentialFingerprint(read.secret), file });
      inventory.push({ key: keyPath, file, pop: peer.id });
      count += 1;
    });
    if (peer.token_files.length > 0 && count === 0) peersWithoutToken.push(peer.id);
  });
  if (problems.length > 0) throw new ConfigError(problems);
  const fingerprint = createHash('sha256').update(tokens.map((t) => `${t.pop}:${t.digest.toString('hex')}`).join('\n')).digest('hex');
  return { value: { tokens, peersWithoutToken }, fingerprint, inventory };
}

export interface BearerVerifierDeps {
  readonly log: OperationalLog;
  /** Told the result of every reload of the token files (metrics). */
  readonly onReload?: ReloadListener;
}

/**
 * `bearer` in auth.methods: the request's `Authorization: Bearer` secret (handed over by the
 * Authorization stage, auth/authorization.ts) must be one of the configured ones; its owner is
 * the request's POP (and must agree with the certificate's). Throws a ConfigError at
 * construction when the token files are unusable.
 */
export function createBearerVerifier(config: Pick<Config, 'peers' | 'auth'>, deps: BearerVerifierDeps): CredentialVerifier {
  const warnEmpty = (set: TokenSet) => {
    for (const pop of set.peersWithoutToken) deps.log.warn({ pop }, 'every token file of this peer is empty or removed: it cannot authenticate with a bearer secret');
  };
  const source = createReloadableSource({
    name: 'bearer tokens',
    load: (phase) => loadTokenSet(config.peers, phase),
    paths: config.peers.flatMap((p) => p.token_files),
    onSwap: warnEmpty,
    log: deps.log,
    onReload: deps.onReload,
    intervalMs: config.auth.reload_interval,
  });
  warnEmpty(source.current());

  return {
    name: 'bearer',
    needs: [],
    verify(credential: string, ctx: RequestContext) {
      ctx.credentials.push('bearer');
      ctx.tokenFingerprint = credentialFingerprint(credential);
      const match = findSecret(credential, source.current().tokens);
      if (!match) throw new Rejection('AUTH_BEARER_INVALID', isJwtShaped(credential) ? 'a JWT, and jwt is not in auth.methods' : 'matches no configured secret');
      agreeIdentity(ctx, match.pop, 'bearer');
    },
    reload: (trigger) => [source.reload(trigger)],
    close: () => source.close(),
  };
}
