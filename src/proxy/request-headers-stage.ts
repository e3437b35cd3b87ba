/**
 * Step 6, before the body is read: the request's headers must mean one thing to the guard and
 * to the backup. A repeated singleton (Content-Type twice) is HTTP_HEADER_DUPLICATE (400), a
 * Content-Encoding other than identity is HTTP_CONTENT_ENCODING_UNSUPPORTED (415); both close
 * the connection, since the body is left unread. Which headers are forwarded at all is decided
 * by the forward stage from the same policy (proxy/headers.ts).
 */
import type { Config } from '../config/schema.ts';
import type { RequestContext } from '../pipeline/context.ts';
import type { Stage } from '../pipeline/stage.ts';
import { checkRequestHeaders, requestHeaderPolicy } from './headers.ts';

export function createRequestHeadersStage(config: { readonly upstream: Pick<Config['upstream'], 'forward_headers'> }): Stage {
  const policy = requestHeaderPolicy(config.upstream.forward_headers);
  return {
    name: 'request-headers',
    run(ctx: RequestContext) {
      checkRequestHeaders(ctx.req.rawHeaders, policy);
    },
  };
}
