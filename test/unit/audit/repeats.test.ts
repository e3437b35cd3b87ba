// Aggregated connection refusals (audit/repeats.ts) on an injected clock: the first written at
// once, the rest of the window in one summary whose counts add up exactly, every certificate
// presented in the window listed, and nothing lost at flush.
import t from 'tap';
import type { AuditEvent } from '../../../src/audit/event.ts';
import { createRepeatAggregator, REPEAT_CERTIFICATES_MAX } from '../../../src/audit/repeats.ts';

const refusal = (reason: string, sha256?: string): AuditEvent => ({
  ecs: { version: '8.11.0' },
  event: { kind: 'event', category: ['network'], type: ['denied'], action: 'tls-connection', outcome: 'failure', reason, module: 'replguard', dataset: 'replguard.audit' },
  source: { ip: '192.0.2.1', port: 1 },
  ...(sha256 ? { tls: { client: { hash: { sha256 } } } } : {}),
  replguard: {},
} as AuditEvent);

function setup(windowMs: number) {
  let clock = 1_800_000_000_000;
  const written: AuditEvent[] = [];
  let counted = 0;
  const agg = createRepeatAggregator(windowMs, () => clock, { count: () => { counted += 1; }, write: (e) => void written.push(e) });
  return { agg, written, counted: () => counted, advance: (ms: number) => { clock += ms; } };
}
const standsFor = (events: AuditEvent[]) => events.reduce((n, e) => n + (e.replguard.repeated ?? 1), 0);

t.test('one event, then one summary per window; the counts add up', async (t) => {
  const { agg, written, counted, advance } = setup(10_000);
  t.teardown(() => agg.close());
  for (let i = 0; i < 300; i++) agg.submit('addr:192.0.2.1', refusal('LIMIT_BANNED_CONNECTION'));
  t.equal(written.length, 1, 'the first at once');
  t.equal(counted(), 300, 'every one counted (metrics)');
  advance(10_000);
  agg.submit('addr:192.0.2.1', refusal('LIMIT_BANNED_CONNECTION')); // a new window: its first is written
  t.equal(written.length, 3, 'the summary, then the next window\'s first');
  t.equal(written[1]!.replguard.repeated, 299);
  t.ok(written[1]!.event.start && written[1]!.event.end);
  agg.submit('addr:192.0.2.2', refusal('LIMIT_BANNED_CONNECTION'));
  agg.submit('addr:192.0.2.1', refusal('TLS_HANDSHAKE_MALFORMED'));
  t.equal(written.length, 5, 'another key or reason is its own window');
  agg.submit('addr:192.0.2.1', refusal('LIMIT_BANNED_CONNECTION'));
  agg.flush();
  t.equal(standsFor(written), counted(), 'flush writes what was held: audit and metrics agree');
});

t.test('a summary lists every certificate its refusals presented, bounded', async (t) => {
  const { agg, written } = setup(10_000);
  t.teardown(() => agg.close());
  agg.submit('addr:192.0.2.1', refusal('TLS_CLIENT_CERT_UNTRUSTED', 'aa'));
  for (const sha of ['bb', 'stolen', 'bb', 'cc']) agg.submit('addr:192.0.2.1', refusal('TLS_CLIENT_CERT_UNTRUSTED', sha));
  agg.flush();
  t.same(written[1]!.replguard.repeated_certificates, ['bb', 'stolen', 'cc'], 'the one between decoys is there');
  t.notOk(written[1]!.replguard.repeated_certificates_truncated);

  const many = setup(10_000);
  t.teardown(() => many.agg.close());
  for (let i = 0; i < REPEAT_CERTIFICATES_MAX + 5; i++) many.agg.submit('k', refusal('TLS_CLIENT_CERT_UNTRUSTED', `c${i}`));
  many.agg.flush();
  t.equal(many.written[1]!.replguard.repeated_certificates!.length, REPEAT_CERTIFICATES_MAX);
  t.equal(many.written[1]!.replguard.repeated_certificates_truncated, true, 'and says when there were more');
});

t.test('a window of 0 writes every refusal', async (t) => {
  const { agg, written } = setup(0);
  for (let i = 0; i < 3; i++) agg.submit('k', refusal('X'));
  t.equal(written.length, 3);
});
