/**
 * Header hygiene between the client and the upstream, both ways, built from allow-lists: what
 * is not listed does not pass. The upstream trusts `x-replguard-*` and `x-forwarded-*`, and a
 * legacy backup may trust any identity-like header a front proxy could have set (RFC 9440
 * `Client-Cert`, `X-SSL-Client-*`, `X-Remote-User`, `True-Client-IP`, `Via`) or obey a method or
 * URL override (`X-HTTP-Method-Override`, `X-Original-URL`), in any spelling: CGI-style servers
 * and several frameworks read `x_replguard_source_pop` as `x-replguard-source-pop`. So the
 * request carries only the client headers listed in DEFAULT_FORWARD_HEADERS and
 * `upstream.forward_headers`, plus the guard's own, written from what it verified.
 *
 * Hand-written: no library builds a proxy's header set from an allow-list; undici and node:http
 * only strip hop-by-hop fields.
 */
import { Rejection } from '../pipeline/reasons.ts';

/** RFC 9110 section 7.6.1 hop-by-hop fields, plus legacy ones proxies conventionally drop. */
const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authorization', 'proxy-authenticate',
]);

/** The guard's own request headers: written from what it verified, never taken from the client. */
const GUARD_HEADERS: ReadonlySet<string> = new Set([
  'host', 'content-length', 'x-replguard-source-pop', 'x-replguard-request-id', 'x-replguard-client-cert-sha256',
  'x-forwarded-for', 'x-forwarded-proto',
]);

/** Prefixes the upstream may read as the guard's identity or routing facts, and their relatives. */
const GUARD_PREFIXES = ['x-replguard-', 'x-forwarded-'];

/**
 * Identity, routing and override headers a backup may trust because a front proxy usually sets
 * them (names in canonical form, see canonicalHeaderName). Never forwarded (no client header is,
 * unless listed), and refused in `upstream.forward_headers`.
 */
const IDENTITY_LIKE: ReadonlySet<string> = new Set([
  'forwarded', 'x-real-ip', 'via', 'true-client-ip', 'x-client-ip', 'x-cluster-client-ip', 'cf-connecting-ip',
  'fastly-client-ip', 'x-originating-ip', 'x-remote-ip', 'x-remote-addr', 'x-remote-user', 'remote-user', 'x-user',
  'x-auth-user', 'x-authenticated-user', 'x-forwarded-user', 'client-cert', 'client-cert-chain', 'x-client-cert',
  'x-client-dn', 'x-client-verify', 'x-http-method-override', 'x-http-method', 'x-method-override',
  'x-original-url', 'x-original-uri', 'x-original-method', 'x-rewrite-url', 'x-override-url', 'x-host',
  'cookie', 'authorization', 'expect',
]);
const IDENTITY_PREFIXES = ['x-ssl-', 'x-client-cert', 'x-amzn-', 'x-envoy-', 'ssl-client-', 'webhook-'];

/**
 * Client headers forwarded by default. Content-Type is the one the body contract checked;
 * Accept and User-Agent describe the client without naming it; X-Request-Id lets a backup's
 * logs correlate (the guard's own id travels in x-replguard-request-id). Content-Length and
 * Host are the guard's own.
 */
export const DEFAULT_FORWARD_HEADERS: readonly string[] = ['accept', 'content-type', 'user-agent', 'x-request-id'];

/**
 * Headers the guard reads as one value, so a second field would let the backup read another
 * one than the guard checked (first-wins, last-wins or joined). Every forwarded header is
 * treated as one too. Host, Authorization and the webhook-* headers have their own refusals
 * (HTTP_FRAMING_INVALID, AUTH_CREDENTIAL_MALFORMED, SIGNATURE_HEADER_REPEATED).
 */
const SINGLETONS = ['content-type', 'content-length', 'content-encoding'];

/** RFC 9110 section 5.6.2 token. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * A header name as spellings that some servers treat alike read it: lower case, `_` as `-`
 * (CGI's HTTP_X_FORWARDED_FOR comes from either, and nginx, Apache and WSGI servers disagree on
 * which they keep).
 */
export function canonicalHeaderName(name: string): string {
  return name.toLowerCase().replaceAll('_', '-');
}

/** True for a name that is, or differs only by case or `_`/`-` from, one of the guard's own headers. */
export function isGuardHeaderLookalike(name: string): boolean {
  const c = canonicalHeaderName(name);
  return GUARD_HEADERS.has(c) || GUARD_PREFIXES.some((p) => c.startsWith(p));
}

/** Why `name` may not be listed in `upstream.forward_headers`, or undefined when it may. */
export function forwardHeaderProblem(name: string): string | undefined {
  if (!TOKEN.test(name)) return `"${name}" is not a header name (RFC 9110 token characters only)`;
  const c = canonicalHeaderName(name);
  if (HOP_BY_HOP.has(c)) return `"${name}" is a hop-by-hop header: it is never forwarded`;
  if (isGuardHeaderLookalike(c)) return `"${name}" is, or looks like, a header the guard writes itself (x-replguard-*, x-forwarded-*, host, content-length)`;
  if (IDENTITY_LIKE.has(c) || IDENTITY_PREFIXES.some((p) => c.startsWith(p))) {
    return `"${name}" is a credential, identity, routing or override header the backup may trust: it is never forwarded`;
  }
  if (c === 'content-encoding') return `"${name}" is always identity (other codings are refused): it is never forwarded`;
  if (name.includes('_')) return `"${name}" has "_": servers disagree on whether it means "-"; write it with "-"`;
  return undefined;
}

/** The client headers a guard forwards: built once from the config. */
export interface RequestHeaderPolicy {
  /** Lower-case names of client headers forwarded. */
  readonly forward: ReadonlySet<string>;
  /** Lower-case names a request may carry at most once. */
  readonly singletons: ReadonlySet<string>;
}

/** @param extra `upstream.forward_headers` (lower-case, already validated) */
export function requestHeaderPolicy(extra: readonly string[] = []): RequestHeaderPolicy {
  // validate.ts refuses these names already; filtered again so that a policy never forwards one.
  const forward = new Set([...DEFAULT_FORWARD_HEADERS, ...extra.filter((n) => forwardHeaderProblem(n) === undefined)]);
  return { forward, singletons: new Set([...SINGLETONS, ...forward]) };
}

/**
 * Refuses what the backup could read differently from the guard: a header of `singletons` sent
 * more than once (400), and a Content-Encoding other than identity (415: the body contract is
 * checked on the bytes the backup gets, which it would decode into others).
 * Reads `rawHeaders`: the runtimes keep the first or join repeated fields in `headers`.
 */
export function checkRequestHeaders(rawHeaders: readonly string[], policy: RequestHeaderPolicy): void {
  const seen = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    if (!policy.singletons.has(name)) continue;
    if (seen.has(name)) throw new Rejection('HTTP_HEADER_DUPLICATE', `${name} is sent more than once`, { closeConnection: true });
    seen.add(name);
    if (name === 'content-encoding') {
      const codings = rawHeaders[i + 1]!.split(',').map((c) => c.trim().toLowerCase()).filter((c) => c !== '');
      if (codings.some((c) => c !== 'identity')) {
        throw new Rejection('HTTP_CONTENT_ENCODING_UNSUPPORTED', `content-encoding ${JSON.stringify(rawHeaders[i + 1]!.slice(0, 64))}`, { closeConnection: true });
      }
    }
  }
}

/** What the guard verified, written into its own headers. */
export interface ForwardIdentity {
  readonly pop: string;
  readonly requestId: string;
  readonly certSha256: string;
  readonly clientAddress: string;
}

export interface UpstreamHeaders {
  /** Flat [name, value, ...] list for undici. */
  readonly headers: string[];
  /**
   * Client header fields not forwarded, beyond the ones the guard consumes (hop-by-hop,
   * framing, Host, Expect and the credential and signature headers in `consumed`).
   */
  readonly dropped: number;
}

/**
 * The request headers to send upstream: the client's allow-listed ones, then the guard's own.
 * @param consumed lower-case names a stage read as credentials: dropped, and not counted
 */
export function upstreamRequestHeaders(
  rawHeaders: readonly string[],
  upstreamHost: string,
  bodyLength: number,
  identity: ForwardIdentity,
  policy: RequestHeaderPolicy,
  consumed: ReadonlySet<string> = new Set(),
): UpstreamHeaders {
  const out: string[] = ['host', upstreamHost];
  let dropped = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    if (policy.forward.has(name)) {
      out.push(name, rawHeaders[i + 1]!);
    } else if (!HOP_BY_HOP.has(name) && !consumed.has(name) && name !== 'host' && name !== 'content-length' && name !== 'expect') {
      dropped += 1;
    }
  }
  out.push(
    'content-length', String(bodyLength),
    'x-replguard-source-pop', identity.pop,
    'x-replguard-request-id', identity.requestId,
    'x-replguard-client-cert-sha256', identity.certSha256,
    'x-forwarded-for', identity.clientAddress,
    'x-forwarded-proto', 'https',
  );
  return { headers: out, dropped };
}

/**
 * Response headers relayed to the client: what describes the body, and Retry-After (the
 * signer's retry schedule reads it). Everything else the upstream sends (Server, X-Powered-By,
 * Set-Cookie, WWW-Authenticate, Location, its own debugging fields) is dropped. Cache-Control and
 * Expires are not relayed either: the guard's own `cache-control: no-store` holds on every
 * response (pipeline/respond.ts adds it with the other security headers).
 */
const RESPONSE_HEADERS: ReadonlySet<string> = new Set([
  'content-encoding', 'content-language', 'content-length', 'content-type', 'date', 'etag', 'last-modified',
  'retry-after', 'vary',
]);

/**
 * The upstream's response headers that the client gets, as an object for writeHead: the
 * allow-listed ones, less any that the upstream's Connection field names (RFC 9110 section
 * 7.6.1: those are for this hop only). From a raw [name, value, ...] list (node:http) or from an
 * object of lower-case names (undici).
 */
export function downstreamResponseHeaders(
  headers: readonly string[] | Readonly<Record<string, string | string[] | undefined>>,
): Record<string, string | string[]> {
  const pairs: Array<[string, string | string[]]> = [];
  if (isRawList(headers)) {
    for (let i = 0; i < headers.length; i += 2) pairs.push([headers[i]!.toLowerCase(), headers[i + 1]!]);
  } else {
    for (const name in headers) {
      const value = headers[name];
      if (value !== undefined) pairs.push([name.toLowerCase(), value]);
    }
  }
  const hop = new Set<string>();
  for (const [name, value] of pairs) {
    if (name !== 'connection') continue;
    for (const v of [value].flat()) for (const token of v.split(',')) hop.add(token.trim().toLowerCase());
  }
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of pairs) {
    if (!RESPONSE_HEADERS.has(name) || hop.has(name)) continue;
    const prev = out[name];
    out[name] = prev === undefined ? value : [...[prev].flat(), ...[value].flat()];
  }
  return out;
}

function isRawList(headers: unknown): headers is readonly string[] {
  return Array.isArray(headers);
}
