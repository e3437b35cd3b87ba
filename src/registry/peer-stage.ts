/**
 * Step 4, after authentication, when `control_plane.peers` takes peers from the registry: the
 * authenticated POP's entry in the pipeline that serves this request is the entry in force now.
 * A new registry builds a new pipeline with its peers (guard/reload.ts), so normally the two are
 * the same. When that build failed (a credential file of the config no longer loads), the old
 * pipeline keeps serving, and this stage refuses the POPs the registry removed or changed
 * (REGISTRY_PEER_NOT_CURRENT), so that a POP HQ withdrew is never admitted under its old entry.
 */
import type { RequestContext } from '../pipeline/context.ts';
import { Rejection } from '../pipeline/reasons.ts';
import { need, type Stage } from '../pipeline/stage.ts';

/**
 * `built`: each peer's entry as this pipeline was built with it; `inForce()`: the entries the
 * registry in force says (registry/peers.ts peerEntries).
 */
export function createRegistryPeerStage(built: ReadonlyMap<string, string>, inForce: () => ReadonlyMap<string, string>): Stage {
  return {
    name: 'registry-peer',
    needs: ['pop'],
    run(ctx: RequestContext) {
      const pop = need(ctx, 'pop', 'registry-peer');
      const now = inForce();
      if (now.get(pop) !== built.get(pop)) {
        const what = now.has(pop) ? 'changed' : 'removed';
        throw new Rejection('REGISTRY_PEER_NOT_CURRENT', `the registry ${what} ${pop} and its new peer set is not in force yet`, { closeConnection: true });
      }
    },
  };
}
