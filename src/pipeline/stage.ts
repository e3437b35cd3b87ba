/**
 * A stage checks or transforms one request; it throws a Rejection to end it. Stages are built
 * once from the config (`createXxxStage(config)`) and composed in the order guard/pipeline.ts
 * lists. Each declares the facts of the request context it reads (`needs`) and the ones it
 * guarantees once it lets a request on (`provides`); `compose()` refuses, at start-up, an order
 * in which a stage would run before what it needs (as undici's `compose()` checks its
 * interceptors), so that a wiring mistake is a start-up error, not a request that skips a check.
 */
import type { RequestContext } from './context.ts';
import { Rejection } from './reasons.ts';

/** The facts a stage can provide to later ones, and where each lives on the context. */
const FACTS = {
  /** The normalised path of an allowed route (route/route-stage.ts). */
  path: (ctx: RequestContext) => ctx.path,
  /** The authenticated POP, agreed by every credential (auth/). */
  pop: (ctx: RequestContext) => ctx.pop,
  /** The whole body, within the size limit (limits/body.ts). */
  body: (ctx: RequestContext) => ctx.body,
  /**
   * A verified Standard Webhooks signature whose nonce was recorded (replay/signature-stage.ts), or,
   * with upstream.deduplicate, found already recorded (`ctx.nonceReused`: judged by proxy/delivery.ts).
   */
  signature: (ctx: RequestContext) => ctx.webhookTimestamp,
  /** The body met the replication contract (replay/body-contract.ts). */
  contract: (ctx: RequestContext) => ctx.contractMet,
} as const;

export type Fact = keyof typeof FACTS;

export interface Stage {
  readonly name: string;
  /** Facts this stage reads: some earlier stage must provide each. */
  readonly needs?: readonly Fact[];
  /** Facts set on the context whenever this stage lets a request on. */
  readonly provides?: readonly Fact[];
  /** Returns nothing when the request may go on; a promise only when it must wait (I/O). */
  run(ctx: RequestContext): void | Promise<void>;
}

export type Pipeline = (ctx: RequestContext) => Promise<void>;

/** A stage list whose order cannot work: a programming error, raised at start-up. */
export class PipelineOrderError extends Error {
  override readonly name = 'PipelineOrderError';
}

/**
 * Runs the stages in order; the first rejection (thrown or rejected) ends the request. Throws a
 * PipelineOrderError when a stage needs a fact that no earlier stage (nor `given`, what the
 * caller sets before the pipeline runs) provides.
 */
export function compose(stages: readonly Stage[], given: readonly Fact[] = []): Pipeline {
  const known = new Set<Fact>(given);
  for (const stage of stages) {
    for (const fact of stage.needs ?? []) {
      if (!known.has(fact)) {
        throw new PipelineOrderError(`stage "${stage.name}" needs "${fact}", which no stage before it provides (before it: ${stages.slice(0, stages.indexOf(stage)).map((s) => s.name).join(', ') || 'none'})`);
      }
    }
    for (const fact of stage.provides ?? []) known.add(fact);
  }
  const list = [...stages];
  return async (ctx) => {
    for (let i = 0; i < list.length; i++) {
      const pending = list[i]!.run(ctx);
      // Synchronous stages (most of them) cost no promise hop.
      if (pending !== undefined) await pending;
    }
  };
}

/**
 * The value of a fact the calling stage declared in `needs`: set by an earlier stage. Missing
 * only if the pipeline was wired around compose(): then the request ends with the one
 * non-banning INTERNAL_PREREQUISITE_MISSING, never with a code that would count against the client.
 */
export function need<F extends Fact>(ctx: RequestContext, fact: F, stage: string): NonNullable<ReturnType<(typeof FACTS)[F]>> {
  const value = FACTS[fact](ctx);
  if (value === undefined) throw new Rejection('INTERNAL_PREREQUISITE_MISSING', `stage "${stage}" found no ${fact}`);
  return value as NonNullable<ReturnType<(typeof FACTS)[F]>>;
}
