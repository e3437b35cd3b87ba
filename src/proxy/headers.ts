/**
 * Header hygiene between the client and the upstream. The upstream trusts `x-replguard-*`
 * headers, so a client must never be able to set one: every client-supplied identity header
 * is dropped and the guard writes its own from what it verified.
 */

/** RFC 9110 section 7.6.1 hop-by-hop fields, plus legacy ones proxies conventionally drop. */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authorization', 'proxy-authenticate',
]);

/** Set by the guard itself, so the client's copy is dropped. */
const REPLACED = new Set(['host', 'content-length', 'expect', 'forwarded', 'x-real-ip']);

/** Prefixes the upstream may read as identity or routing facts. */
const IDENTITY_PREFIXES = ['x-replguard-', 'x-forwarded-'];

/** Headers a later stage consumed as credentials; never forwarded (see `stripped` below). */
export interface ForwardIdentity {
  readonly pop: string;
  readonly requestId: string;
  readonly certSha256: string;
  readonly clientAddress: string;
}

/**
 * The request headers to send upstream, as a flat [name, value, ...] list (duplicates kept
 * in order), from the client's raw headers.
 * @param stripped extra lower-case names to drop (credentials, signature headers)
 */
export function upstreamRequestHeaders(
  rawHeaders: readonly string[],
  upstreamHost: string,
  bodyLength: number,
  identity: ForwardIdentity,
  stripped: ReadonlySet<string>,
): string[] {
  const out: string[] = ['host', upstreamHost];
  let connectionTokens: Set<string> | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() === 'connection') {
      connectionTokens ??= new Set();
      for (const t of rawHeaders[i + 1]!.split(',')) connectionTokens.add(t.trim().toLowerCase());
    }
  }
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    if (HOP_BY_HOP.has(name) || REPLACED.has(name) || stripped.has(name)) continue;
    if (connectionTokens?.has(name)) continue;
    if (name.startsWith('x-replguard-') || name.startsWith('x-forwarded-')) continue;
    out.push(name, rawHeaders[i + 1]!);
  }
  out.push(
    'content-length', String(bodyLength),
    'x-replguard-source-pop', identity.pop,
    'x-replguard-request-id', identity.requestId,
    'x-replguard-client-cert-sha256', identity.certSha256,
    'x-forwarded-for', identity.clientAddress,
    'x-forwarded-proto', 'https',
  );
  return out;
}

/** True for a header name the client may not send upstream in any form. */
export function isIdentityHeader(name: string): boolean {
  const n = name.toLowerCase();
  return REPLACED.has(n) || IDENTITY_PREFIXES.some((p) => n.startsWith(p));
}

/**
 * The upstream's response headers without hop-by-hop fields, as an object for writeHead: from a
 * raw [name, value, ...] list (node:http) or from an object of lower-case names (undici).
 */
export function downstreamResponseHeaders(
  headers: readonly string[] | Readonly<Record<string, string | string[] | undefined>>,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const add = (name: string, value: string | string[]) => {
    if (HOP_BY_HOP.has(name) || name === 'x-replguard-request-id') return;
    const prev = out[name];
    out[name] = prev === undefined ? value : [...[prev].flat(), ...[value].flat()];
  };
  if (isRawList(headers)) {
    for (let i = 0; i < headers.length; i += 2) add(headers[i]!.toLowerCase(), headers[i + 1]!);
  } else {
    for (const name in headers) {
      const value = headers[name];
      if (value !== undefined) add(name.toLowerCase(), value);
    }
  }
  return out;
}

function isRawList(headers: unknown): headers is readonly string[] {
  return Array.isArray(headers);
}
