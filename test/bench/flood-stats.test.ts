// The flood scenario's counting (bench/lib/flood-stats.mjs): what counts as refused, let through
// or unanswered between two snapshots of the flood client, and the legitimate POP's success rate.
import t from 'tap';
import { classifyFloodError, describeKind, floodWindow, legitSuccess } from '../../bench/lib/flood-stats.mjs';

const kind = (attempts: number, outcomes: Record<string, number>, skipped = 0) => ({ attempts, skipped, handshakes: attempts, outcomes });

t.test('a window counts only what happened between the two snapshots, as rates over its length', async (t) => {
  const before = { atMs: 1000, kinds: { 'no-cert': kind(10, { 'tls-alert': 10 }), 'banned-address': kind(5, { 'reset-in-handshake': 5 }) } };
  const after = {
    atMs: 3000,
    kinds: {
      'no-cert': kind(110, { 'tls-alert': 90, 'timeout-in-handshake': 20 }, 4),
      'banned-address': kind(105, { 'reset-in-handshake': 99, 'http-200': 6 }),
    },
  };
  const w = floodWindow(before, after);
  t.equal(w.seconds, 2);
  t.same(w.kinds['no-cert'].outcomes, { 'tls-alert': 80, 'timeout-in-handshake': 20 });
  t.equal(w.kinds['no-cert'].refused, 80, 'a timeout is not a refusal');
  t.equal(w.kinds['no-cert'].unanswered, 20);
  t.equal(w.kinds['no-cert'].skipped, 4);
  t.equal(w.kinds['no-cert'].refusedPerS, 40);
  t.equal(w.kinds['banned-address'].letThrough, 6, 'a 2xx is a flood request let through');
  t.equal(w.kinds['banned-address'].refused, 94);
  t.equal(w.refused, 174);
  t.equal(w.refusedPerS, 87);
  t.equal(w.letThrough, 6);
});

t.test('a kind that first appears in the later snapshot counts from zero', async (t) => {
  const w = floodWindow({ atMs: 0, kinds: {} }, { atMs: 1000, kinds: { 'bad-credentials': kind(3, { 'http-401': 3 }) } });
  t.equal(w.kinds['bad-credentials'].refused, 3);
  t.equal(w.refusedPerS, 3);
});

t.test('socket errors are classified by code and by whether the handshake had completed', async (t) => {
  const err = (code: string) => Object.assign(new Error(code), { code });
  t.equal(classifyFloodError(err('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED'), true), 'tls-alert-after-handshake');
  t.equal(classifyFloodError(err('ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE'), false), 'tls-alert');
  t.equal(classifyFloodError(err('ECONNRESET'), false), 'reset-in-handshake');
  t.equal(classifyFloodError(err('EPIPE'), true), 'reset-after-handshake');
  t.equal(classifyFloodError(err('ECONNREFUSED'), false), 'connect-refused');
  t.equal(classifyFloodError(new Error('no code'), false), 'error-other');
});

t.test('legitimate success counts non-2xx answers, socket errors and timeouts as failures', async (t) => {
  const stats = { requests: 1000, err_status: 10, err_connect: 0, err_read: 5, err_write: 0, err_timeout: 5 };
  t.equal(legitSuccess(stats), 990 / 1010);
  t.equal(legitSuccess({ ...stats, err_status: 0, err_read: 0, err_timeout: 0 }), 1);
  t.equal(legitSuccess(null), null);
  t.equal(legitSuccess({ requests: 0, err_status: 0, err_connect: 0, err_read: 0, err_write: 0, err_timeout: 0 }), null);
});

t.test('a kind is described by its rate, its outcomes (most frequent first) and what got through', async (t) => {
  const w = floodWindow({ atMs: 0, kinds: {} }, { atMs: 1000, kinds: { k: kind(10, { 'http-403': 2, 'tls-alert': 7, 'http-204': 1 }, 3) } });
  t.equal(describeKind(w.kinds.k), '9/s refused (tls-alert 7, http-403 2, http-204 1), 1 LET THROUGH, 3 not sent (cap)');
});
