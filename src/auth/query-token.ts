/**
 * Credentials in the URL are refused, and named as such. A query string ends up in proxy logs,
 * browser history and monitoring tools, so a credential there must be treated as leaked: the
 * audit event says AUTH_TOKEN_IN_QUERY (an alert) rather than the generic
 * ROUTE_QUERY_NOT_ALLOWED, and neither the value nor the query is ever logged.
 *
 * Division of labour with the route stage: this stage runs just before it and refuses only a
 * query that carries a credential-like parameter name or a JWT-shaped value; any other query is
 * left for the route stage to refuse (the replication API takes no query at all).
 */
import type { RequestContext } from '../pipeline/context.ts';
import { Rejection } from '../pipeline/reasons.ts';
import type { Stage } from '../pipeline/stage.ts';

/** Parameter names (compared lower-case, with "-" read as "_") that carry credentials in the wild. */
const CREDENTIAL_PARAMS = new Set([
  'access_token', 'token', 'id_token', 'refresh_token', 'auth', 'auth_token', 'authorization', 'bearer',
  'jwt', 'api_key', 'apikey', 'key', 'secret', 'client_secret', 'password', 'passwd', 'signature', 'sig',
]);

/** A JWS/JWT in compact form: "eyJ" is base64url for `{"`. */
const JWT_LIKE = /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\./;

export function createQueryTokenStage(): Stage {
  return {
    name: 'query-token',
    run(ctx: RequestContext) {
      const url = ctx.req.url ?? '';
      const q = url.indexOf('?');
      if (q === -1) return;
      const found = credentialInQuery(url.slice(q + 1));
      if (found !== undefined) throw new Rejection('AUTH_TOKEN_IN_QUERY', found);
    },
  };
}

/**
 * What makes a query string (the part after "?") look like it carries a credential, or
 * undefined. Also used by the admin listener's ban administration (server/admin.ts).
 */
export function credentialInQuery(query: string): string | undefined {
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=');
    const name = safeDecode(eq === -1 ? pair : pair.slice(0, eq)).toLowerCase().replace(/-/g, '_');
    const value = eq === -1 ? '' : safeDecode(pair.slice(eq + 1));
    // The detail names the parameter only when it is one of ours (no client text is logged).
    if (CREDENTIAL_PARAMS.has(name)) return `query parameter "${name}"`;
    if (JWT_LIKE.test(value) || JWT_LIKE.test(name)) return 'a JWT-shaped query value';
  }
  return undefined;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return text;
  }
}
