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
 * Expiry (finding 5 of the review): a token file may carry a second line `not_after: <RFC 3339
 * time with Z or an offset>` after the secret (`replguard gen-token --not-after` writes it). The
 * secret is refused from that instant on (AUTH_BEARER_EXPIRED, checked per request, so on
 * kept-alive connections too), and its expiry is a metric
 * (`replguard_bearer_secret_expiry_timestamp_seconds`). It lives in the file, not in the config,
 * so that a secret and its expiry are replaced together by one atomic rename and picked up by
 * the reload that picks up the secret. There is deliberately no maximum age from the file's
 * mtime: a copy, a restore, a `touch` or a Kubernetes Secret volume's update all reset it, so it
 * says when the file was last written, not when the secret was made. The first line stays the
 * bare secret, so `head -n1 FILE` still gives it.
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
  /** Index of the file in its peer's token_files (a bounded metric label). */
  readonly slot: number;
  /** Epoch milliseconds from which the secret is refused; undefined: it does not expire. */
  readonly notAfter: number | undefined;
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
  return checkSecretText(file, keyPath, readFileSync(file, 'utf8').replace(/\r?\n$/, ''));
}

function checkSecretText(file: string, keyPath: string, text: string): { secret: string | undefined } | { problem: ConfigProblem } {
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

/** `not_after: 2027-01-31T00:00:00Z` (RFC 3339, seconds or fractions, Z or an offset). */
const NOT_AFTER_LINE = /^not_after: (\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2}))$/;

/** The line `replguard gen-token --not-after` writes after the secret. */
export function formatNotAfterLine(notAfterMs: number): string {
  return `not_after: ${new Date(notAfterMs).toISOString().replace(/\.000Z$/, 'Z')}`;
}

/**
 * A bearer token file that may carry its expiry: the secret on the first line, optionally
 * `not_after: <RFC 3339>` on the second (see the top of this file). Used by the guard's token
 * files and the signer's `credentials.token_file`; other secret files (admin) take no expiry.
 */
export function readExpiringTokenFile(file: string, keyPath: string): { secret: string | undefined; notAfter: number | undefined } | { problem: ConfigProblem } {
  const unsafe = checkSecretFile(file, keyPath);
  if (unsafe) return { problem: unsafe };
  const text = readFileSync(file, 'utf8');
  const lines = text.replace(/\r?\n$/, '').split(/\r?\n/);
  if (lines.length === 1) {
    const read = readTokenFile(file, keyPath);
    return 'problem' in read ? read : { secret: read.secret, notAfter: undefined };
  }
  const match = lines.length === 2 ? NOT_AFTER_LINE.exec(lines[1]!) : null;
  const notAfter = match ? Date.parse(match[1]!) : Number.NaN;
  if (!Number.isFinite(notAfter)) {
    return { problem: { path: keyPath, message: `${file}: after the secret, only one line \`not_after: <RFC 3339 time, e.g. 2027-01-31T00:00:00Z>\` may follow; use \`replguard gen-token --not-after\`` } };
  }
  const secret = checkSecretText(file, keyPath, lines[0]!);
  if ('problem' in secret) return secret;
  if (secret.secret === undefined) return { problem: { path: keyPath, message: `${file}: a not_after with no secret before it` } };
  return { secret: secret.secret, notAfter };
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
      const read = readExpiringTokenFile(file, keyPath);
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
      tokens.push({ pop: peer.id, digest, fingerprint: credentialFingerprint(read.secret), file, slot: j, notAfter: read.notAfter });
      inventory.push({ key: keyPath, file, pop: peer.id });
      count += 1;
    });
    if (peer.token_files.length > 0 && count === 0) peersWithoutToken.push(peer.id);
  });
  if (problems.length > 0) throw new ConfigError(problems);
  const fingerprint = createHash('sha256').update(tokens.map((t) => `${t.pop}:${t.digest.toString('hex')}:${t.notAfter ?? ''}`).join('\n')).digest('hex');
  return { value: { tokens, peersWithoutToken }, fingerprint, inventory };
}

export interface BearerVerifierDeps {
  readonly log: OperationalLog;
  /** Epoch milliseconds, for the secrets' not_after. */
  readonly now: () => number;
  /** Told the result of every reload of the token files (metrics). */
  readonly onReload?: ReloadListener;
}

/**
 * `bearer` in auth.methods: the request's `Authorization: Bearer` secret (handed over by the
 * Authorization stage, auth/authorization.ts) must be one of the configured ones; its owner is
 * the request's POP (and must agree with the certificate's). Throws a ConfigError at
 * construction when the token files are unusable.
 */
/** One secret in force: its POP, its slot in token_files and its not_after (epoch ms), if any. */
export interface BearerExpiry {
  readonly pop: string;
  readonly slot: number;
  readonly notAfter: number | undefined;
}

export interface BearerVerifier extends CredentialVerifier {
  /** The secrets in force now (after the last reload), for the expiry metric. */
  expiries(): readonly BearerExpiry[];
}

export function createBearerVerifier(config: Pick<Config, 'peers' | 'auth'>, deps: BearerVerifierDeps): BearerVerifier {
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
      // After the constant-time lookup: only the holder of the real (old) secret gets here, so
      // this refusal is not a guess and does not count toward a ban (a POP that missed a
      // rotation must not be banned); the client gets the same generic 401 as any other.
      if (match.notAfter !== undefined && deps.now() >= match.notAfter) {
        throw new Rejection('AUTH_BEARER_EXPIRED', `the secret of ${match.file} expired at ${new Date(match.notAfter).toISOString()}`);
      }
      agreeIdentity(ctx, match.pop, 'bearer');
    },
    expiries: () => source.current().tokens.map(({ pop, slot, notAfter }) => ({ pop, slot, notAfter })),
    reload: (trigger) => [source.reload(trigger)],
    close: () => source.close(),
  };
}
