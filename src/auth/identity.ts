/**
 * Identity agreement: every credential of a request names a POP (the certificate, the bearer
 * secret's owner, the JWT's sub) and they must all name the same one. The first credential
 * stage sets `ctx.pop`; each later one compares with it.
 */
import type { RequestContext } from '../pipeline/context.ts';
import { Rejection } from '../pipeline/reasons.ts';

/**
 * Records that `credential` names `pop` (a configured peer id, checked by the caller), or
 * refuses the request when an earlier credential named another POP.
 */
export function agreeIdentity(ctx: RequestContext, pop: string, credential: string): void {
  if (ctx.pop !== undefined && ctx.pop !== pop) {
    const earlier = ctx.credentials.filter((c) => c !== credential).join('+') || 'an earlier credential';
    throw new Rejection('AUTH_IDENTITY_MISMATCH', `${earlier} names ${ctx.pop}, ${credential} names ${pop}`);
  }
  ctx.pop = pop;
}
