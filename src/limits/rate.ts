/**
 * Rate limits (rate-limiter-flexible): per client address before authentication (step 2, so an
 * unauthenticated flood is refused before any routing or authentication work), and per
 * authenticated POP (step 5). Over a limit: 429 with Retry-After (seconds until the window
 * resets). The counters' store cannot be reached: 503, never let through.
 */
import { RateLimiterRes } from 'rate-limiter-flexible';
import type { RequestContext } from '../pipeline/context.ts';
import { Rejection, type Reason } from '../pipeline/reasons.ts';
import { need, type Stage } from '../pipeline/stage.ts';
import { connectionAddressKey, popKey } from '../store/client-key.ts';
import { storeUnavailable } from './unavailable.ts';

/** A rate-limiter-flexible limiter (or BurstyRateLimiter): resolves, or rejects with a RateLimiterRes when over. */
export interface RequestLimiter {
  consume(key: string): Promise<unknown>;
}

function limit(limiter: RequestLimiter, key: string, over: Reason, what: string): Promise<void> {
  return limiter.consume(key).then(
    () => undefined,
    (res: unknown) => {
      if (res instanceof RateLimiterRes) {
        throw new Rejection(over, `${what} over its limit; window resets in ${res.msBeforeNext} ms`, { retryAfter: Math.max(1, Math.ceil(res.msBeforeNext / 1000)) });
      }
      throw storeUnavailable('rate limit', res);
    },
  );
}

/** Step 2: `limits.address_rate_per_minute` per client address (IPv6 per /64). */
export function createAddressRateStage(limiter: RequestLimiter): Stage {
  return {
    name: 'address-rate',
    run: (ctx: RequestContext) => limit(limiter, connectionAddressKey(ctx.conn), 'LIMIT_ADDRESS_RATE_EXCEEDED', 'client address'),
  };
}

/** Step 5: `limits.rate_per_minute` (plus `rate_burst`) per authenticated POP. */
export function createPopRateStage(limiter: RequestLimiter): Stage {
  return {
    name: 'pop-rate',
    needs: ['pop'],
    run(ctx: RequestContext) {
      const pop = need(ctx, 'pop', 'pop-rate');
      return limit(limiter, popKey(pop), 'LIMIT_RATE_EXCEEDED', `POP ${pop}`);
    },
  };
}
