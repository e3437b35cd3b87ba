/**
 * Who may administer bans on the admin listener (`GET /bans`, `DELETE /bans/{key}`). Health and
 * metrics (`/healthz`, `/readyz`, `/metrics`) are for probes and scrapers and need no permission.
 *
 * - Without `admin.token_file` (the default): loopback callers only, i.e. a TCP peer address in
 *   127.0.0.0/8 or ::1, also when written IPv4-mapped (`::ffff:127.0.0.1`, `::ffff:7f00:1`).
 *   Anyone else: ADMIN_CALLER_NOT_LOOPBACK, whatever the listener is bound to.
 * - With `admin.token_file`: every caller, loopback included, must send
 *   `Authorization: Bearer <token>`. Once a token exists, loopback is no longer a credential,
 *   because it is shared more widely than it looks: every container of a Kubernetes pod shares the
 *   pod's loopback (the unmodified backup, a log shipper, an ephemeral debug container), and a
 *   service-mesh proxy hands remote clients' connections to the application from a loopback
 *   address (Istio's inbound passthrough uses 127.0.0.6). An operator who set a token has said
 *   that loopback is not enough; honouring loopback beside it would undo that.
 *
 * The token file is checked like every secret file: not readable by others, strength by
 * crypto/secret-strength.ts, RFC 6750 b64token characters (auth/bearer.ts `readTokenFile`). The
 * presented token is compared in constant time (crypto/secret-compare.ts) and only its
 * fingerprint is ever logged.
 */
import { BlockList, isIP } from 'node:net';
import { readBearerCredential } from '../auth/authorization.ts';
import { readTokenFile } from '../auth/bearer.ts';
import { collectProblems, ConfigError, type Validation } from '../config/errors.ts';
import { credentialFingerprint, digestSecret, findSecret } from '../crypto/secret-compare.ts';
import { Rejection } from '../pipeline/reasons.ts';
import type { Loaded } from '../reload/source.ts';

/** The config key naming the admin token file (for problems and logs). */
export const ADMIN_TOKEN_KEY = 'admin.token_file';

/** node:net's BlockList matches an IPv4-mapped IPv6 address against the IPv4 rules. */
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** True for a TCP peer address on loopback (127.0.0.0/8, ::1, IPv4-mapped forms); false for anything else or nothing. */
export function isLoopbackPeer(address: string | undefined): boolean {
  if (address === undefined) return false;
  const family = isIP(address);
  if (family === 0) return false;
  try {
    return LOOPBACK.check(address, family === 6 ? 'ipv6' : 'ipv4');
  } catch {
    return false; // an address BlockList cannot parse (e.g. with a zone id) is not loopback
  }
}

export interface AdminToken {
  /** SHA-256 of the token: the form it is kept and compared in. */
  readonly digest: Buffer;
  /** credentialFingerprint() of the token, for the audit and operational logs. */
  readonly fingerprint: string;
  readonly file: string;
}

/**
 * Reads and checks the admin token file, at start-up (config validation) and at every reload.
 * Throws a ConfigError naming `admin.token_file`. An empty file is refused: unlike a peer's
 * rotation slot, it would leave nobody able to administer bans, which is not what it looks like.
 */
export function loadAdminToken(file: string): Loaded<AdminToken> {
  const read = readTokenFile(file, ADMIN_TOKEN_KEY);
  if ('problem' in read) throw new ConfigError([read.problem]);
  if (read.secret === undefined) {
    throw new ConfigError([{
      path: ADMIN_TOKEN_KEY,
      message: `${file} is empty; write a token into it (\`replguard gen-token --out FILE\`), or remove admin.token_file to administer bans from loopback only`,
    }]);
  }
  const digest = digestSecret(read.secret);
  return { value: { digest, fingerprint: credentialFingerprint(read.secret), file }, fingerprint: digestSecret(digest).toString('hex') };
}

/** The admin part of a guard config: the admin token file, read as every reload reads it. */
export function checkAdminConfig(config: Readonly<{ admin: { token_file?: string | undefined } }>): Validation {
  const problems: Validation['problems'] = [];
  const file = config.admin.token_file;
  if (file !== undefined) collectProblems(problems, () => loadAdminToken(file));
  return { problems, warnings: [] };
}

/** How a ban-administration request was let in, or why not (the audit event says which). */
export type AdminCaller =
  | { readonly allowed: true; readonly via: 'loopback' }
  | { readonly allowed: true; readonly via: 'admin_token'; readonly fingerprint: string }
  | {
    readonly allowed: false;
    readonly reason: 'ADMIN_CALLER_NOT_LOOPBACK' | 'ADMIN_TOKEN_MISSING' | 'ADMIN_TOKEN_INVALID';
    readonly detail: string;
    /** The presented credential's fingerprint, when one was presented. */
    readonly fingerprint?: string;
  };

/** What the decision reads from a request: the TCP peer address and the raw headers. */
export interface AdminRequest {
  readonly remoteAddress: string | undefined;
  readonly rawHeaders: string[];
}

/** The one decision: loopback without a token; with a token, the token from everyone. */
export function decideAdminCaller(request: AdminRequest, token: AdminToken | undefined): AdminCaller {
  if (token === undefined) {
    if (isLoopbackPeer(request.remoteAddress)) return { allowed: true, via: 'loopback' };
    return { allowed: false, reason: 'ADMIN_CALLER_NOT_LOOPBACK', detail: 'not a loopback address, and admin.token_file is not set' };
  }
  let credential: string;
  try {
    credential = readBearerCredential(request);
  } catch (err) {
    if (!(err instanceof Rejection)) throw err;
    if (err.reason === 'AUTH_CREDENTIAL_MISSING') return { allowed: false, reason: 'ADMIN_TOKEN_MISSING', detail: 'no Authorization header' };
    return { allowed: false, reason: 'ADMIN_TOKEN_INVALID', detail: err.detail ?? 'not a single Bearer credential' };
  }
  const fingerprint = credentialFingerprint(credential);
  if (findSecret(credential, [token]) === undefined) return { allowed: false, reason: 'ADMIN_TOKEN_INVALID', detail: 'not the admin token', fingerprint };
  return { allowed: true, via: 'admin_token', fingerprint };
}
