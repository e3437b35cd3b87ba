/**
 * The batch numbers the signer carries inside the Standard Webhooks `webhook-id` (issue 21
 * part 1), so they are covered by the signature and any Standard Webhooks signer can still talk
 * to a guard that does not read them: `rs1_<epoch>_<sequence>`, where the epoch is 16 random
 * bytes in lower-case hex, new at every signer start (and after a batch that ended without the
 * guard's answer: signer/signer.ts), and the sequence the batch's number in
 * that epoch (1, 2, 3, ...; the retries of a batch keep it). A retry to a guard that does not
 * deduplicate needs a nonce of its own (the first attempt's may be recorded): it appends
 * `_<attempt>` (2, 3, ...). The id stays unique per attempt sent and within the `webhook-id`
 * alphabet and length (16 to 128 of [A-Za-z0-9_-]).
 */
import { randomBytes } from 'node:crypto';

const PATTERN = /^rs1_([0-9a-f]{32})_([1-9][0-9]{0,14})(?:_([2-9]|[1-9][0-9]{1,2}))?$/;

/** The highest batch number (15 digits): the guard's arithmetic on it stays within safe integers. */
export const MAX_SEQUENCE = 999_999_999_999_999;

export interface BatchId {
  readonly epoch: string;
  readonly sequence: number;
}

/** The batch's webhook-id; with `attempt` (2 or more), that retry's own id. */
export function formatBatchId(id: BatchId, attempt?: number): string {
  if (!/^[0-9a-f]{32}$/.test(id.epoch) || !Number.isSafeInteger(id.sequence) || id.sequence < 1 || id.sequence > MAX_SEQUENCE) throw new RangeError('an epoch is 32 hex digits, a sequence an integer from 1 to MAX_SEQUENCE');
  if (attempt !== undefined && !(Number.isInteger(attempt) && attempt >= 2 && attempt <= 999)) throw new RangeError('a retry\'s attempt is 2 to 999');
  return `rs1_${id.epoch}_${id.sequence}${attempt !== undefined ? `_${attempt}` : ''}`;
}

/** The epoch and sequence a webhook-id carries (and the attempt of a suffixed retry); undefined for any other id (another signer). */
export function parseBatchId(webhookId: string): (BatchId & { readonly attempt?: number }) | undefined {
  const m = PATTERN.exec(webhookId);
  if (!m) return undefined;
  const sequence = Number(m[2]);
  if (!Number.isSafeInteger(sequence)) return undefined;
  return { epoch: m[1]!, sequence, ...(m[3] !== undefined ? { attempt: Number(m[3]) } : {}) };
}

/** A new epoch: 16 random bytes. */
export function newEpoch(): string {
  return randomBytes(16).toString('hex');
}
