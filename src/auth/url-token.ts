/**
 * Credentials in the URL are refused, and named as such. A request target ends up in proxy logs,
 * browser history and monitoring tools, so a credential anywhere in it must be treated as leaked:
 * the audit event says where it was, as an alert, rather than the generic ROUTE_* code the route
 * stage would give, and the credential is never logged (core/redact.ts cuts it from url.path):
 *
 *  - AUTH_TOKEN_IN_PATH: in a path segment (`/api/replication/<jwt>`) or a matrix parameter
 *    (`/apply;access_token=...`);
 *  - AUTH_TOKEN_IN_QUERY: in the query (`?access_token=`, `?<jwt>`, a bare credential name);
 *  - AUTH_TOKEN_IN_FRAGMENT: after `#` (which no client should send: RFC 9110 section 7.1 keeps
 *    fragments out of the request target, and the route stage refuses one as ROUTE_TARGET_INVALID).
 *
 * What counts as a credential is core/redact.ts's one linear scan (JWTs, signing keys,
 * credential parameter names, runs with the shape of a bearer secret). This stage runs just
 * before the route stage, before any authentication; any other query or odd target is left to
 * the route stage to refuse.
 */
import { CREDENTIAL_PARAMS, findTokenShape, type TokenHit } from '../core/redact.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { Rejection } from '../pipeline/reasons.ts';
import type { Stage } from '../pipeline/stage.ts';

const SHAPE_TEXT: Record<TokenHit['shape'], string> = {
  'jwt': 'a JWT',
  'signature-key': 'a signing key (whsec_, whsk_, whpk_)',
  'credential-parameter': 'a credential parameter',
  'base64-run': 'a long base64 run (the shape of a bearer secret)',
};

/** The detail names what was found, never the client's text (a parameter name only when it is one of ours). */
function describe(hit: TokenHit): string {
  return hit.parameter !== undefined ? `the credential parameter "${hit.parameter}"` : SHAPE_TEXT[hit.shape];
}

export function createUrlTokenStage(): Stage {
  return {
    name: 'url-token',
    run(ctx: RequestContext) {
      const url = ctx.req.url ?? '';
      const q = url.indexOf('?');
      const h = url.indexOf('#');
      const pathEnd = q === -1 ? (h === -1 ? url.length : h) : h === -1 ? q : Math.min(q, h);
      const path = url.slice(0, pathEnd);
      const inPath = findTokenShape(path);
      if (inPath) {
        const where = isMatrixParameter(path, inPath.start) ? 'a matrix parameter' : 'a path segment';
        throw new Rejection('AUTH_TOKEN_IN_PATH', `${describe(inPath)} in ${where}`);
      }
      // A "?" after the "#" is part of the fragment, not a query.
      if (q !== -1 && (h === -1 || q < h)) {
        const found = credentialInQuery(url.slice(q + 1, h === -1 ? url.length : h));
        if (found !== undefined) throw new Rejection('AUTH_TOKEN_IN_QUERY', found);
      }
      if (h !== -1) {
        const inFragment = findTokenShape(url.slice(h + 1));
        if (inFragment) throw new Rejection('AUTH_TOKEN_IN_FRAGMENT', `${describe(inFragment)} in the fragment`);
      }
    },
  };
}

/**
 * What credential a query carries (for the audit detail: never the client's text), or undefined.
 * Also used by the admin listener, which refuses a credential in its query the same way.
 */
export function credentialInQuery(query: string): string | undefined {
  const named = credentialName(query);
  if (named !== undefined) return `query parameter "${named}"`;
  const inQuery = findTokenShape(query);
  return inQuery ? `${describe(inQuery)} in the query` : undefined;
}

/** The first query parameter whose name (with or without a value) is a credential name. */
function credentialName(query: string): string | undefined {
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=');
    const name = safeDecode(eq === -1 ? pair : pair.slice(0, eq)).toLowerCase().replaceAll('-', '_');
    if (CREDENTIAL_PARAMS.has(name)) return name;
  }
  return undefined;
}

/** Whether the word at `start` sits after a ";" in its segment (RFC 3986 section 3.3 parameters). */
function isMatrixParameter(path: string, start: number): boolean {
  const segment = path.lastIndexOf('/', start - 1);
  const semicolon = path.lastIndexOf(';', start - 1);
  return semicolon > segment;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return text;
  }
}
