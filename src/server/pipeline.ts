/**
 * The guard's request pipeline, in the order of PRODUCT.md. Each stage is built once from the
 * config; this file only lists them. Stages never import each other.
 */
import { createMtlsStage } from '../auth/mtls.ts';
import type { Config } from '../config/schema.ts';
import { createBodyStage } from '../limits/body.ts';
import { createBanStage, type Bans } from '../limits/bans.ts';
import { createFramingStage } from '../limits/framing.ts';
import { createAddressRateStage, createPopRateStage } from '../limits/rate.ts';
import type { Limiters } from '../store/create.ts';
import { compose, type Pipeline, type Stage } from '../pipeline/stage.ts';
import { createForwardStage } from '../proxy/forward.ts';
import { createRouteStage } from '../route/route-stage.ts';

export interface PipelineDeps {
  readonly now: () => number;
  /** Failure counting and bans (limits/bans.ts), built by the guard over the shared state. */
  readonly bans: Bans;
  /** The shared state's rate limiters (store/create.ts). */
  readonly limiters: Pick<Limiters, 'addressRate' | 'popRate'>;
}

export interface GuardPipeline {
  readonly run: Pipeline;
  readonly stages: readonly Stage[];
  /** Releases what the stages hold (upstream connections, timers). */
  close(): void;
}

export function buildPipeline(config: Readonly<Config>, deps: PipelineDeps): GuardPipeline {
  const forward = createForwardStage(config);
  const stages: Stage[] = [
    // 1. TLS: verified at the handshake (server/guard.ts), where banned clients are cut too.
    //    HTTP framing the parser let through (smuggling forms, too many header fields).
    createFramingStage(config),
    // 2. Ban check (address, and the POP the certificate names), then the per-address rate limit.
    createBanStage(deps.bans),
    createAddressRateStage(deps.limiters.addressRate),
    // 3. Route.
    createRouteStage(config),
    // 4. Authentication: every configured credential names a POP; they must agree.
    createMtlsStage(config, deps.now),
    // 5. Rate limit: a ban of a POP that only authentication named, then the per-POP limit.
    createBanStage(deps.bans),
    createPopRateStage(deps.limiters.popRate),
    // 6. Body.
    createBodyStage(config),
    // 7. Freshness, replay, integrity.
    // 8. Proxy.
    forward,
  ];
  return { run: compose(stages), stages, close: () => forward.close() };
}
