/**
 * The guard's request pipeline, in the order of PRODUCT.md. Each stage is built once from the
 * config; this file only lists them. Stages never import each other.
 */
import { createMtlsStage } from '../auth/mtls.ts';
import type { Config } from '../config/schema.ts';
import { createBodyStage } from '../limits/body.ts';
import { compose, type Pipeline, type Stage } from '../pipeline/stage.ts';
import { createForwardStage } from '../proxy/forward.ts';
import { createRouteStage } from '../route/route-stage.ts';
import { createBodyContractStage } from '../replay/body-contract.ts';
import { SIGNATURE_HEADERS } from '../replay/signature.ts';
import { createSignatureStage } from '../replay/signature-stage.ts';
import type { NonceStore } from '../store/store.ts';

export interface PipelineDeps {
  readonly now: () => number;
  /** Nonces of signed requests; required when auth.methods lists signature. */
  readonly nonceStore?: NonceStore;
}

export interface GuardPipeline {
  readonly run: Pipeline;
  readonly stages: readonly Stage[];
  /** Releases what the stages hold (upstream connections, timers). */
  close(): void;
}

export function buildPipeline(config: Readonly<Config>, deps: PipelineDeps): GuardPipeline {
  const forward = createForwardStage(config, { strippedHeaders: new Set(SIGNATURE_HEADERS) });
  const stages: Stage[] = [
    // 1. TLS: verified at the handshake (server/guard.ts).
    // 2. Ban check.
    // 3. Route.
    createRouteStage(config),
    // 4. Authentication: every configured credential names a POP; they must agree.
    createMtlsStage(config, deps.now),
    // 5. Rate limit.
    // 6. Body.
    createBodyStage(config),
    // 7. Freshness, replay, integrity.
    ...(config.auth.methods.includes('signature') ? [createSignatureStage(config, { now: deps.now, nonceStore: requireStore(deps) })] : []),
    createBodyContractStage(),
    // 8. Proxy.
    forward,
  ];
  return { run: compose(stages), stages, close: () => forward.close() };
}

function requireStore(deps: PipelineDeps): NonceStore {
  if (!deps.nonceStore) throw new Error('auth.methods lists signature but no nonce store was given to buildPipeline');
  return deps.nonceStore;
}
