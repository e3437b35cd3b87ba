/**
 * A stage checks or transforms one request; it throws a Rejection to end it. Stages are built
 * once from the config (`createXxxStage(config)`) and composed in the order guard/pipeline.ts lists.
 */
import type { RequestContext } from './context.ts';

export interface Stage {
  readonly name: string;
  /** Returns nothing when the request may go on; a promise only when it must wait (I/O). */
  run(ctx: RequestContext): void | Promise<void>;
}

export type Pipeline = (ctx: RequestContext) => Promise<void>;

/** Runs the stages in order; the first rejection (thrown or rejected) ends the request. */
export function compose(stages: readonly Stage[]): Pipeline {
  const list = [...stages];
  return async (ctx) => {
    for (let i = 0; i < list.length; i++) {
      const pending = list[i]!.run(ctx);
      // Synchronous stages (most of them) cost no promise hop.
      if (pending !== undefined) await pending;
    }
  };
}
