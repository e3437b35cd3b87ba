/**
 * Each batch reaches the backup once (upstream.deduplicate; docs/signer.md#each-batch-reaches-the-backup-once).
 * An unmodified backup cannot be assumed idempotent, and a sender that got no answer (a
 * timeout, a broken connection) retries. So before forwarding, the guard claims the batch in the
 * shared store, keyed by POP and batch: `<pop>:id:<webhook-id>` for a signed request (the signer
 * keeps one webhook-id for every attempt of a batch), `<pop>:sha256:<body digest>` otherwise.
 *
 * - No record: a `pending` record (with the batch digest) is written atomically (one replica
 *   wins a race), and the request is forwarded. The backup's complete answer replaces it
 *   (`answered`: status, content type and a body of at most max_answer_bytes); an answer of 429
 *   or 503, or a connection the backup refused, `released` (it did not apply the batch: a retry
 *   may deliver it); anything after which the backup may or may not have applied it (a
 *   timeout, a connection or answer broken off) `unknown`.
 * - A record of the same batch: `answered` gets the recorded answer again with
 *   `x-replguard-duplicate: true` (DELIVERY_DUPLICATE), `pending` 409 DELIVERY_IN_FLIGHT,
 *   `unknown` 409 DELIVERY_OUTCOME_UNKNOWN, `released` is claimed again and forwarded.
 * - A record of another batch under the same webhook-id: REPLAY_NONCE_REUSED, as without dedup.
 * - A webhook-id the nonce store has seen but no record names was never forwarded (refused after
 *   the nonce was recorded, e.g. by the body contract or a store that did not answer): claimed
 *   like a new batch. The record takes over the nonce's job of never delivering a signed
 *   request twice; the signature and the timestamp window are still checked first.
 *
 * Records expire `window` after their claim. Every answer of this path carries
 * `x-replguard-dedup: on`, which tells the signer that a retry of a batch that may have been
 * delivered is safe to send. A store that cannot answer refuses the request (503): never
 * forwarded unrecorded. A record that cannot be settled (the store went away meanwhile) stays
 * pending until it expires: its retries are refused, never delivered again.
 */
import { createHash } from 'node:crypto';
import type { Config } from '../config/schema.ts';
import type { OperationalLog } from '../log/operational.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { Rejection, type Reason } from '../pipeline/reasons.ts';
import { errorBody, setSecurityHeaders } from '../pipeline/respond.ts';
import { need } from '../pipeline/stage.ts';
import { StoreUnavailableError, type DeliveryRecord, type DeliveryStore } from '../store/store.ts';

/** Sent on every answer of a guard that deduplicates (the signer reads it). */
export const DEDUP_HEADER = 'x-replguard-dedup';
/** Sent on an answer replayed from the record instead of a delivery. */
export const DUPLICATE_HEADER = 'x-replguard-duplicate';
const DEDUP_HEADERS: Readonly<Record<string, string>> = Object.freeze({ [DEDUP_HEADER]: 'on' });

/** Backup answers that say "not applied, later": the batch may be delivered again. */
const NOT_APPLIED_STATUSES: ReadonlySet<number> = new Set([429, 503]);

export type DeliveryDecision =
  /** Forward the batch, then settle its record with what happened. */
  | { readonly kind: 'forward'; settle(outcome: DeliveryOutcome): Promise<void> }
  /** The recorded answer was sent: nothing to forward. */
  | { readonly kind: 'answered' };

export type DeliveryOutcome =
  | { readonly kind: 'answer'; readonly status: number; readonly contentType: string | undefined; readonly body: Buffer | undefined }
  /** Certainly not applied (the connection to the backup was refused). */
  | { readonly kind: 'not-sent' }
  /** Perhaps applied: a timeout, a connection or an answer broken off. */
  | { readonly kind: 'unknown' };

export interface Delivery {
  /** Claims the batch of a request that passed every check; throws a Rejection to refuse it. */
  begin(ctx: RequestContext): Promise<DeliveryDecision>;
  /** A refusal of the forwarding path with the dedup header added. */
  rejection(reason: Reason, detail: string): Rejection;
  /** Headers every forwarded answer carries. */
  readonly headers: Readonly<Record<string, string>>;
  /** The most answer body bytes recorded. */
  readonly maxAnswerBytes: number;
}

export interface DeliveryDeps {
  readonly store: DeliveryStore;
  readonly log: OperationalLog;
}

export function createDelivery(config: NonNullable<Config['upstream']['deduplicate']>, relayErrorBodies: boolean, deps: DeliveryDeps): Delivery {
  const { store, log } = deps;
  const refuse = (reason: Reason, detail: string) => new Rejection(reason, detail, { headers: DEDUP_HEADERS });
  const storeCall = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (err) {
      if (err instanceof StoreUnavailableError) throw refuse('DELIVERY_STORE_UNAVAILABLE', err.message);
      throw err;
    }
  };

  return {
    headers: DEDUP_HEADERS,
    maxAnswerBytes: config.max_answer_bytes,
    rejection: refuse,
    async begin(ctx) {
      const pop = need(ctx, 'pop', 'forward');
      const body = need(ctx, 'body', 'forward');
      const digest = ctx.batchDigest ?? createHash('sha256').update(body).digest('hex');
      // Signed: the POP's signed webhook-id names the batch; unsigned: only its bytes can.
      const signed = ctx.webhookTimestamp !== undefined && ctx.webhookId !== undefined;
      const key = signed ? `${pop}:id:${ctx.webhookId}` : `${pop}:sha256:${digest}`;
      // A reused webhook-id (ctx.nonceReused) with no record was never forwarded (refused after
      // the nonce stage, or a replica's race): the record, not the nonce, keeps it to one delivery.
      const claim = await storeCall(() => store.claim(key, digest, config.window));
      if (claim.kind === 'full') throw refuse('DELIVERY_STORE_FULL', `${config.max_batches} batches are remembered and none has expired`);
      if (claim.kind === 'existing') {
        const record = claim.record;
        if (record.digest !== digest) {
          if (signed) throw new Rejection('REPLAY_NONCE_REUSED', 'webhook-id already used by this POP for another batch');
          throw refuse('DELIVERY_OUTCOME_UNKNOWN', 'the record of this batch is unreadable');
        }
        if (record.state === 'pending') throw refuse('DELIVERY_IN_FLIGHT', 'the first delivery of this batch is still waiting for the backup');
        if (record.state !== 'answered' || record.status === undefined) {
          throw refuse('DELIVERY_OUTCOME_UNKNOWN', 'an earlier delivery of this batch may have reached the backup (timeout or broken connection); not sent again');
        }
        answerFromRecord(ctx, record, relayErrorBodies);
        return { kind: 'answered' };
      }
      let settled = false;
      return {
        kind: 'forward',
        async settle(outcome) {
          if (settled) return;
          settled = true;
          const record: DeliveryRecord = outcome.kind === 'answer'
            ? NOT_APPLIED_STATUSES.has(outcome.status)
              ? { state: 'released', digest }
              : {
                  state: 'answered', digest, status: outcome.status,
                  ...(outcome.body !== undefined && outcome.body.length <= config.max_answer_bytes
                    ? { body: outcome.body.toString('base64'), ...(outcome.contentType !== undefined ? { contentType: outcome.contentType } : {}) }
                    : {}),
                }
            : { state: outcome.kind === 'not-sent' ? 'released' : 'unknown', digest };
          try {
            await store.settle(key, record);
          } catch (err) {
            // Still pending: retries of this batch are refused until the record expires.
            log.error({ err, request_id: ctx.id, state: record.state }, 'could not record the outcome of a delivery: its retries are refused (409) until upstream.deduplicate.window passes');
          }
        },
      };
    },
  };
}

/** Sends the recorded answer of an answered batch (security headers, the two dedup headers). */
function answerFromRecord(ctx: RequestContext, record: DeliveryRecord, relayErrorBodies: boolean): void {
  const status = record.status!;
  const { res } = ctx;
  let body: Buffer;
  const headers: Record<string, string> = { ...DEDUP_HEADERS, [DUPLICATE_HEADER]: 'true' };
  if (status >= 500 && !relayErrorBodies) {
    body = Buffer.from(errorBody(status, ctx.id));
    headers['content-type'] = 'application/json';
  } else {
    body = record.body !== undefined ? Buffer.from(record.body, 'base64') : Buffer.alloc(0);
    if (record.body !== undefined && record.contentType !== undefined) headers['content-type'] = record.contentType;
  }
  headers['content-length'] = String(body.length);
  setSecurityHeaders(res, ctx.id);
  res.writeHead(status, headers);
  res.end(body);
  ctx.responseBytes = body.length;
  ctx.answeredAs = 'DELIVERY_DUPLICATE';
}
