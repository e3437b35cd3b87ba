/** Steps 2 and 5 of the pipeline: the ban check, against the store the bans live in (limits/bans.ts). */
import type { RequestContext } from '../pipeline/context.ts';
import { Rejection } from '../pipeline/reasons.ts';
import type { Fact, Stage } from '../pipeline/stage.ts';
import type { BanRecord } from '../store/ban-store.ts';
import type { Bans } from './bans.ts';
import { storeUnavailable } from './unavailable.ts';

/**
 * The ban checks of one pipeline: step 2 (`early`: the address, and the POP a verified
 * certificate names) and step 5 (`afterAuthentication`: a POP that only a token named). A banned
 * key is refused with 403; the store unreachable is 503, never let through. Both share one
 * record of the keys already asked about for a request, so the second asks the store only about
 * a key the first did not know (for an mTLS POP: nothing, no second round trip to Redis).
 */
export function createBanStages(bans: Bans): { readonly early: Stage; readonly afterAuthentication: Stage } {
  const checked = new WeakMap<RequestContext, Set<string>>();
  const stage = (name: string, needs: readonly Fact[]): Stage => ({
    name,
    needs,
    run(ctx: RequestContext) {
      const done = checked.get(ctx) ?? new Set<string>();
      const keys = bans.connectionKeys(ctx.conn, ctx.pop).filter((k) => !done.has(k));
      if (keys.length === 0) return;
      for (const k of keys) done.add(k);
      checked.set(ctx, done);
      const refuse = (ban: BanRecord | undefined) => {
        if (ban) throw new Rejection('LIMIT_BANNED', `${ban.key} is banned until ${new Date(ban.until).toISOString()}`);
      };
      const known = bans.checkNow(keys);
      if (known !== null) return refuse(known);
      return bans.check(keys).then(refuse, (err: unknown) => {
        throw storeUnavailable('ban check', err);
      });
    },
  });
  return { early: stage('ban', []), afterAuthentication: stage('ban-pop', ['pop']) };
}
