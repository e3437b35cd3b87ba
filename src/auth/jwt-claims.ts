/**
 * The replguard JWT claim set: what `make-jwt` writes (and, later, the signer role), and what the
 * guard reads back. Shared so that both sides agree on one format.
 *
 * The namespaced claim (RFC 7519 section 4.2, a collision-resistant name) lists the routes the
 * token may call, each as "METHOD /normalised/path":
 *   "https://replguard.dev/claims": { "routes": ["POST /api/replication/apply"] }
 * A token without it, or with an entry in another form, is refused (fail closed).
 */
import { randomUUID } from 'node:crypto';
import { normalisePath } from '../core/normalise.ts';

export const CLAIM_NAMESPACE = 'https://replguard.dev/claims';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);

/** The claim's key for a route: method, one space, normalised path. */
export function routeKey(method: string, path: string): string {
  return `${method} ${path}`;
}

/** `POST:/api/replication/apply` (the CLI form) -> `POST /api/replication/apply`, or undefined. */
export function parseRouteSpec(spec: string): string | undefined {
  const colon = spec.indexOf(':');
  if (colon === -1) return undefined;
  const method = spec.slice(0, colon).toUpperCase();
  const path = spec.slice(colon + 1);
  if (!METHODS.has(method) || normalisePath(path) !== path) return undefined;
  return routeKey(method, path);
}

/** One entry of the routes claim, validated; undefined when it is not in the exact form. */
function parseRouteEntry(entry: unknown): string | undefined {
  if (typeof entry !== 'string') return undefined;
  const space = entry.indexOf(' ');
  if (space === -1) return undefined;
  const method = entry.slice(0, space);
  const path = entry.slice(space + 1);
  if (!METHODS.has(method) || normalisePath(path) !== path) return undefined;
  return entry;
}

/** The routes a verified claim set allows, or a problem (the token is then refused). */
export function readRoutesClaim(claims: Record<string, unknown>): { routes: ReadonlySet<string> } | { problem: string } {
  const ns = claims[CLAIM_NAMESPACE];
  if (ns === undefined) return { problem: `missing the "${CLAIM_NAMESPACE}" claim` };
  if (ns === null || typeof ns !== 'object' || Array.isArray(ns)) return { problem: `"${CLAIM_NAMESPACE}" is not an object` };
  const list = (ns as Record<string, unknown>).routes;
  if (!Array.isArray(list) || list.length === 0) return { problem: `"${CLAIM_NAMESPACE}".routes is not a non-empty array` };
  const routes = new Set<string>();
  for (const entry of list) {
    const route = parseRouteEntry(entry);
    if (route === undefined) return { problem: `"${CLAIM_NAMESPACE}".routes has an entry that is not "METHOD /normalised/path"` };
    routes.add(route);
  }
  return { routes };
}

export interface ClaimSetInput {
  readonly issuer: string;
  /** The source POP (sub). */
  readonly pop: string;
  /** The guard's POP id (aud). */
  readonly audience: string;
  /** Route keys, as from parseRouteSpec. */
  readonly routes: readonly string[];
  /** Seconds from iat to exp. */
  readonly ttlSeconds: number;
  /** Unix seconds. */
  readonly now: number;
  /** RFC 8705 `x5t#S256`: base64url SHA-256 of the client certificate (DER). */
  readonly certThumbprint?: string;
  readonly jti?: string;
}

/** The claim set replguard expects, ready to sign. */
export function buildClaimSet(input: ClaimSetInput): Record<string, unknown> {
  return {
    iss: input.issuer,
    sub: input.pop,
    aud: input.audience,
    iat: input.now,
    exp: input.now + input.ttlSeconds,
    jti: input.jti ?? randomUUID(),
    ...(input.certThumbprint !== undefined ? { cnf: { 'x5t#S256': input.certThumbprint } } : {}),
    [CLAIM_NAMESPACE]: { routes: [...input.routes] },
  };
}
