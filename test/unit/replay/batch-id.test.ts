// The batch numbers inside webhook-id: the form round-trips, stays a valid webhook-id, and any
// other id (another Standard Webhooks signer) carries none.
import t from 'tap';
import { formatBatchId, MAX_SEQUENCE, newEpoch, parseBatchId } from '../../../src/replay/batch-id.ts';
import { isValidWebhookId } from '../../../src/replay/signature.ts';

t.test('round trip, within the webhook-id alphabet and length', async (t) => {
  const epoch = newEpoch();
  t.match(epoch, /^[0-9a-f]{32}$/);
  t.not(newEpoch(), epoch, 'a new epoch each time');
  for (const sequence of [1, 2, 999, MAX_SEQUENCE]) {
    const id = formatBatchId({ epoch, sequence });
    t.ok(isValidWebhookId(id), id);
    t.same(parseBatchId(id), { epoch, sequence });
    const retry = formatBatchId({ epoch, sequence }, 7);
    t.ok(isValidWebhookId(retry), retry);
    t.same(parseBatchId(retry), { epoch, sequence, attempt: 7 }, 'a retry\'s own id keeps the number');
  }
});

t.test('other ids carry no number; bad numbers are refused', async (t) => {
  const epoch = 'ab'.repeat(16);
  for (const id of ['msg_2KWPBgLlAfxdpx2AI54pPJ85f4W', `rs1_${epoch}_0`, `rs1_${epoch}_01`, `rs1_${epoch.toUpperCase()}_1`, `rs1_${epoch}_99999999999999999`, `rs1_${epoch}_${MAX_SEQUENCE + 1}`, `rs1_${epoch}_1_`, `rs1_${epoch}_1_1`, `rs1_${epoch}_1_1000`, `rs2_${epoch}_1`]) {
    t.equal(parseBatchId(id), undefined, id);
  }
  t.throws(() => formatBatchId({ epoch, sequence: 0 }));
  t.throws(() => formatBatchId({ epoch: 'xyz', sequence: 1 }));
  t.throws(() => formatBatchId({ epoch, sequence: 1.5 }));
  t.throws(() => formatBatchId({ epoch, sequence: MAX_SEQUENCE + 1 }), 'past 15 digits');
  t.throws(() => formatBatchId({ epoch, sequence: 1 }, 1), 'attempt 1 is the batch\'s own id');
});
