/**
 * Batch numbers (replay.sequence; docs/replay.md#batch-sequence). The replguard signer names
 * each batch `rs1_<epoch>_<n>` in its signed webhook-id (replay/batch-id.ts); this stage, after
 * the signature and the body contract and right before forwarding, claims the number in the
 * epoch's state (replay/sequence.ts, in the shared store) and reports what it finds. The
 * tracker, made once per process, holds what outlives a reload: the epochs this process touched,
 * which a timer sweeps for gaps even when no later batch comes, and the findings' sink.
 *
 * - The claim is written before the request is forwarded, so the next batch of a sender that
 *   waits for each answer always sees it; the claim is withdrawn after an answer its sender
 *   retries (429 or 503; 502 and 504 too when upstream.deduplicate is on, for the signer retries
 *   those then), so that a retry is not taken for a duplicate.
 * - Every change is one compare-and-set of the whole state: two replicas never both report one
 *   gap, and never both claim one number.
 * - A store that does not answer refuses the request (503): never forwarded untracked.
 */
import { LRUCache } from 'lru-cache';
import type { SequenceFinding } from '../audit/control-events.ts';
import type { Config } from '../config/schema.ts';
import type { OperationalLog } from '../log/operational.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { Rejection } from '../pipeline/reasons.ts';
import { need, type Stage } from '../pipeline/stage.ts';
import { StoreUnavailableError, type SequenceStore } from '../store/store.ts';
import { parseBatchId } from './batch-id.ts';
import { claim, decodeEpochState, encodeEpochState, release, see, standing, startAt, sweep, type EpochState, type Gap, type SequencePolicy } from './sequence.ts';

type SequenceConfig = NonNullable<NonNullable<Config['replay']>['sequence']>;

/**
 * Compare-and-set attempts before the request is refused. Updates of one epoch are queued
 * within a process, so only other replicas' writes can make one fail.
 */
const MAX_ATTEMPTS = 16;
/** Epochs a process sweeps for gaps, per POP (its most recently touched): one POP's epochs never push out another's. */
const MAX_SWEPT_EPOCHS_PER_POP = 256;

/** A stored state that breaks the state's rules (another version's, a corrupted write): refused, never started over. */
export class UnreadableSequenceError extends StoreUnavailableError {}

export interface SequenceTrackerDeps {
  readonly store: SequenceStore;
  readonly now: () => number;
  readonly log: OperationalLog;
  /** Where findings go (the guard writes them as SEQUENCE_* events). */
  readonly onFinding: (finding: SequenceFinding) => void;
}

/** One epoch being swept: its POP and epoch, and the policy of the last request that touched it. */
interface Touched {
  readonly pop: string;
  readonly epoch: string;
  config: SequenceConfig;
}

/** A change of one epoch's state: the next state (undefined: write nothing), the gaps it found, and what the caller learns. */
type Change<R> = (state: EpochState | undefined, now: number) => { state: EpochState | undefined; gaps: readonly Gap[]; result: R };

export interface SequenceTracker {
  /**
   * Applies `change` to an epoch's state with compare-and-set (a `state` of undefined writes
   * nothing); reports the gaps it found once the write held; returns its result.
   */
  update<R>(pop: string, epoch: string, config: SequenceConfig, change: Change<R>, requestId?: string): Promise<R>;
  /** Epochs being swept (for tests and metrics). */
  swept(): number;
  /** Withdraws the claim of `n` (its sender sends it again); a failure is logged, the claim stays. */
  release(pop: string, epoch: string, config: SequenceConfig, n: number): void;
  /** Hands a finding to the sink. */
  report(finding: SequenceFinding): void;
  /** Sweeps every touched epoch now (the timer does this every gap_window / 4, at least each second). */
  sweepAll(): Promise<void>;
  close(): void;
}

export function createSequenceTracker(deps: SequenceTrackerDeps): SequenceTracker {
  const { store, now, log, onFinding } = deps;
  /** Per POP (peers only: every POP here authenticated), its epochs to sweep. */
  const touched = new Map<string, LRUCache<string, Touched>>();
  const touchedOf = (pop: string) => {
    let epochs = touched.get(pop);
    if (!epochs) {
      epochs = new LRUCache<string, Touched>({ max: MAX_SWEPT_EPOCHS_PER_POP });
      touched.set(pop, epochs);
    }
    return epochs;
  };
  /** The update queued last per epoch: one at a time within this process. */
  const queues = new Map<string, Promise<unknown>>();
  let timer: NodeJS.Timeout | undefined;
  let timerEvery = Infinity;
  let sweeping = false;

  const policyOf = (config: SequenceConfig): SequencePolicy => ({ gapWindowMs: config.gap_window, maxTracked: config.max_tracked });

  const schedule = (config: SequenceConfig) => {
    const every = Math.max(1000, Math.floor(config.gap_window / 4));
    if (timer !== undefined && every >= timerEvery) return;
    clearInterval(timer);
    timerEvery = every;
    timer = setInterval(() => void tracker.sweepAll(), every);
    timer.unref();
  };

  const tracker: SequenceTracker = {
    update<R>(pop: string, epoch: string, config: SequenceConfig, change: Change<R>, requestId?: string): Promise<R> {
      const key = `${pop}:${epoch}`;
      const before = queues.get(key) ?? Promise.resolve();
      const attempt = () => attemptUpdate<R>(pop, epoch, config, change, requestId);
      const run = before.then(attempt, attempt);
      const settled = run.then(() => undefined, () => undefined);
      queues.set(key, settled);
      void settled.then(() => {
        if (queues.get(key) === settled) queues.delete(key);
      });
      return run;
    },

    swept: () => [...touched.values()].reduce((sum, epochs) => sum + epochs.size, 0),

    async sweepAll() {
      if (sweeping) return;
      sweeping = true;
      try {
        for (const entry of [...touched.values()].flatMap((epochs) => [...epochs.values()])) {
          try {
            // An expired epoch (state undefined) leaves the sweep.
            await tracker.update(entry.pop, entry.epoch, entry.config, (state, at) => (state === undefined ? { state, gaps: [], result: undefined } : { ...sweep(state, at, policyOf(entry.config)), result: undefined }));
          } catch (err) {
            log.warn({ err, pop: entry.pop }, 'could not sweep batch numbers for gaps; retried at the next sweep');
          }
        }
      } finally {
        sweeping = false;
      }
    },

    release(pop, epoch, config, n) {
      tracker.update(pop, epoch, config, (state, at) => (state !== undefined ? { ...release(state, n, at), result: undefined } : { state, gaps: [], result: undefined })).catch((err: unknown) => {
        log.warn({ err, pop, sequence: n }, 'could not withdraw the claim of a batch number its sender retries: the retry will be reported as a duplicate');
      });
    },

    report: onFinding,

    close() {
      clearInterval(timer);
      timer = undefined;
    },
  };

  async function attemptUpdate<R>(pop: string, epoch: string, config: SequenceConfig, change: Change<R>, requestId: string | undefined): Promise<R> {
    const key = `${pop}:${epoch}`;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const text = await store.read(key);
        const stored = text === undefined ? undefined : decodeEpochState(text);
        if (stored === 'unreadable') {
          throw new UnreadableSequenceError(`the stored batch-number state of ${pop}'s epoch ${epoch} is unreadable (another replguard version, or a corrupted write): its batches are refused until it expires (replay.sequence.retention) or is deleted`);
        }
        const { state, gaps, result } = change(stored, now());
        if (state === undefined) {
          touched.get(pop)?.delete(key);
          return result;
        }
        const next = encodeEpochState(state);
        if (next !== text && !(await store.compareAndSet(key, text, next, config.retention))) continue;
        const epochs = touchedOf(pop);
        const entry = epochs.get(key);
        if (entry) entry.config = config;
        else epochs.set(key, { pop, epoch, config });
        schedule(config);
        for (const gap of gaps) onFinding({ reason: 'SEQUENCE_GAP', pop, epoch, gap, ...(requestId !== undefined ? { requestId } : {}) });
        return result;
    }
    throw new StoreUnavailableError(`the batch-number state of ${pop}'s epoch kept changing under ${MAX_ATTEMPTS} concurrent updates from other replicas`);
  }
  return tracker;
}

export interface SequenceStage extends Stage {
  /** The request's answer went out with `status`: a claim its sender will retry is withdrawn. */
  settled(ctx: RequestContext, status: number): void;
}

/** Answers after which the sender sends the same batch number again and the backup does not have it (signer/retry.ts). */
const RETRIED = new Set([429, 503]);

export function createSequenceStage(config: Pick<Config, 'replay' | 'upstream'>, tracker: SequenceTracker): SequenceStage | undefined {
  const sequence = config.replay?.sequence;
  if (sequence === undefined) return undefined;
  const policy: SequencePolicy = { gapWindowMs: sequence.gap_window, maxTracked: sequence.max_tracked };
  const refuse = sequence.order === 'refuse';
  const dedup = config.upstream.deduplicate !== undefined;
  /** Requests that claimed a number, until their answer is out. */
  const claims = new WeakMap<RequestContext, { pop: string; epoch: string; n: number }>();
  const storeCall = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (err) {
      if (err instanceof StoreUnavailableError) throw new Rejection('SEQUENCE_STORE_UNAVAILABLE', err.message);
      throw err;
    }
  };

  return {
    name: 'sequence',
    // The number is the POP's signed data, in a body that met the contract: nothing after this
    // stage but the forward can refuse the request.
    needs: ['pop', 'signature', 'contract'],
    async run(ctx) {
      const pop = need(ctx, 'pop', 'sequence');
      need(ctx, 'signature', 'sequence');
      const id = ctx.webhookId !== undefined ? parseBatchId(ctx.webhookId) : undefined;
      if (id === undefined) {
        // The rs1 form is the replguard signer's: one that does not parse (a number past
        // MAX_SEQUENCE, a bad epoch) is refused, never forwarded untracked.
        if (ctx.webhookId?.startsWith('rs1_')) throw new Rejection('SEQUENCE_MISSING', 'the webhook-id has the rs1_ form but no valid epoch and batch number');
        if (sequence.required) throw new Rejection('SEQUENCE_MISSING', 'the webhook-id carries no batch number (rs1_<epoch>_<n>)');
        return;
      }
      const n = id.sequence;
      ctx.batch = { epoch: id.epoch, sequence: n };
      const found = await storeCall(() => tracker.update(pop, id.epoch, sequence, (state, at) => {
        const where = standing(state, n);
        // A retry of the same batch (same webhook-id) with upstream.deduplicate: its delivery
        // record decides (the recorded answer, or 409); it is neither a duplicate nor a claim.
        if (where === 'duplicate' && ctx.nonceReused) return { state: state!, gaps: [], result: { where, claimed: false } };
        // A new epoch starts where this guard first sees it: what came before is unknown to it,
        // not missing (a guard restarted on a memory store, a signer that ran before).
        const seen = see(state ?? startAt(n), n, at, policy);
        const takes = where === 'new-epoch' || where === 'in-order' || (where === 'ahead' && !refuse);
        const claimed = takes ? claim(seen.state, n) : { state: seen.state, gaps: [] };
        const swept = sweep(claimed.state, at, policy);
        return { state: swept.state, gaps: [...seen.gaps, ...claimed.gaps, ...swept.gaps], result: { where, claimed: takes } };
      }, ctx.id));
      const finding = found.where === 'new-epoch' ? 'SEQUENCE_NEW_EPOCH'
        : found.where === 'duplicate' && !ctx.nonceReused ? 'SEQUENCE_DUPLICATE'
        : found.where === 'below-lowest' ? 'SEQUENCE_BELOW_LOWEST'
        : undefined;
      if (finding !== undefined) tracker.report({ reason: finding, pop, epoch: id.epoch, sequence: n, requestId: ctx.id });
      if (found.claimed) claims.set(ctx, { pop, epoch: id.epoch, n });
      if (!refuse) return;
      if (found.where === 'ahead') throw new Rejection('SEQUENCE_OUT_OF_ORDER', `batch ${n}: a lower number of this epoch has not been forwarded yet`, { retryAfter: 1 });
      if (finding === 'SEQUENCE_DUPLICATE' || finding === 'SEQUENCE_BELOW_LOWEST') throw new Rejection('SEQUENCE_REFUSED', `batch ${n}: ${finding === 'SEQUENCE_DUPLICATE' ? 'forwarded before' : 'below the lowest number tracked'}`);
    },
    settled(ctx, status) {
      const claimed = claims.get(ctx);
      if (claimed === undefined) return;
      claims.delete(ctx);
      // 429 and 503 (the guard's or the backup's own): not applied, and the signer retries them.
      // A 502 the guard answered itself without reaching the backup (UPSTREAM_UNAVAILABLE) is
      // retried when the guard deduplicates. Anything else the backup answered, or may have
      // received (a timeout), keeps its number.
      const release = RETRIED.has(status) || (dedup && status === 502 && ctx.upstreamStatus === undefined && ctx.interruptedBy === undefined);
      if (release) tracker.release(claimed.pop, claimed.epoch, sequence, claimed.n);
    },
  };
}
