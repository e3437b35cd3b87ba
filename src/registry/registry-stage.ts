/**
 * Step 0, for every request when `control_plane` is set: this process serves only while the
 * registry in force confirms its role and has not run out (registry/monitor.ts). Otherwise the
 * request is refused with the registry's reason (503) and the connection closed, so that open
 * keep-alive connections stop with the first request after the change, never served in a role
 * the control plane does not confirm.
 */
import { Rejection } from '../pipeline/reasons.ts';
import type { Stage } from '../pipeline/stage.ts';
import type { ServingState } from './monitor.ts';

/** Seconds a refused client is told to wait: HQ has to issue a new registry first. */
export const REGISTRY_RETRY_AFTER_S = 30;

export function createRegistryStage(state: () => ServingState): Stage {
  return {
    name: 'registry',
    run() {
      const s = state();
      if (!s.serving) throw new Rejection(s.reason, s.detail, { retryAfter: REGISTRY_RETRY_AFTER_S, closeConnection: true });
    },
  };
}
