// Which refusals count toward a ban, and the ban lifecycle on the memory state with an
// injected clock (no sleeping an hour).
import t from 'tap';
import type { AuditEvent } from '../../../src/audit/event.ts';
import { configSchema } from '../../../src/config/schema.ts';
import { BANNED_ADDRESS_PROBE_MS, Bans, countsTowardBan } from '../../../src/limits/bans.ts';
import { REASONS, type Reason } from '../../../src/pipeline/reasons.ts';
import { createOperationalLog } from '../../../src/log/operational.ts';
import { createPeerIndex } from '../../../src/auth/mtls.ts';
import { newConnection, type ConnectionInfo } from '../../../src/pipeline/context.ts';
import { createSharedState } from '../../../src/store/create.ts';

t.test('the reasons that count toward a ban (docs/limits.md lists the same)', async (t) => {
  t.same((Object.keys(REASONS) as Reason[]).filter((r) => REASONS[r].kind !== 'event' && countsTowardBan(r)), [
    'TLS_CLIENT_CERT_MISSING', 'TLS_CLIENT_CERT_UNTRUSTED', 'TLS_CLIENT_CERT_EXPIRED', 'TLS_CLIENT_CERT_NOT_YET_VALID',
    'TLS_CLIENT_CERT_REVOKED', 'TLS_CLIENT_CERT_INVALID', 'TLS_HANDSHAKE_MALFORMED', 'HTTP_MALFORMED', 'HTTP_HEADERS_TOO_LARGE', 'ROUTE_TARGET_INVALID',
    'AUTH_PEER_UNKNOWN', 'AUTH_PEER_AMBIGUOUS', 'AUTH_CERT_PIN_MISMATCH', 'AUTH_CERT_EXPIRED',
    'AUTH_TOKEN_IN_QUERY', 'AUTH_TOKEN_IN_PATH', 'AUTH_TOKEN_IN_FRAGMENT', 'AUTH_CREDENTIAL_MISSING', 'AUTH_CREDENTIAL_MALFORMED', 'AUTH_BEARER_INVALID',
    'AUTH_JWT_MALFORMED', 'AUTH_JWT_HEADER_REFUSED', 'AUTH_JWT_KEY_UNKNOWN', 'AUTH_JWT_KEY_NOT_BOUND', 'AUTH_JWT_SIGNATURE_INVALID',
    'AUTH_JWT_EXPIRED', 'AUTH_JWT_NOT_YET_VALID', 'AUTH_JWT_TOO_OLD', 'AUTH_JWT_CLAIM_INVALID', 'AUTH_JWT_REVOKED',
    'AUTH_JWT_PEER_UNKNOWN', 'AUTH_JWT_CERT_BINDING_MISMATCH', 'AUTH_ROUTE_NOT_ALLOWED', 'AUTH_IDENTITY_MISMATCH',
    'HTTP_FRAMING_INVALID',
    'SIGNATURE_HEADERS_MISSING', 'SIGNATURE_HEADER_REPEATED', 'SIGNATURE_ID_INVALID', 'SIGNATURE_TIMESTAMP_INVALID',
    'SIGNATURE_TOO_MANY_ENTRIES', 'SIGNATURE_ENTRY_MALFORMED', 'SIGNATURE_VERSION_UNKNOWN', 'SIGNATURE_LENGTH_INVALID',
    'SIGNATURE_MISMATCH', 'REPLAY_TIMESTAMP_STALE', 'REPLAY_TIMESTAMP_FUTURE', 'REPLAY_NONCE_REUSED',
    'BODY_CONTENT_TYPE_INVALID', 'BODY_NOT_UTF8', 'BODY_NOT_JSON', 'BODY_NOT_OBJECT', 'BODY_JSON_TOO_DEEP', 'BODY_JSON_TOO_MANY_KEYS', 'BODY_DUPLICATE_KEY', 'BODY_SOURCE_POP_MISSING',
    'BODY_SOURCE_POP_MISMATCH', 'BODY_TIMESTAMP_MISMATCH', 'BODY_NONCE_MISMATCH', 'BODY_ENTRIES_INVALID',
  ]);
  for (const reason of ['FORWARDED', 'HTTP_TIMEOUT', 'TLS_HANDSHAKE_FAILED', 'TLS_HANDSHAKE_TIMEOUT', 'LIMIT_CONNECTIONS_EXCEEDED', 'LIMIT_ADDRESS_CONNECTIONS_EXCEEDED', 'LIMIT_BANNED_CONNECTION', 'HTTP_EXPECTATION_FAILED', 'ROUTE_NOT_FOUND', 'BODY_TOO_LARGE', 'BODY_JSON_TOO_MANY_VALUES', 'BODY_INCOMPLETE', 'LIMIT_RATE_EXCEEDED', 'LIMIT_BANNED', 'LIMIT_STORE_UNAVAILABLE', 'REPLAY_STORE_FULL', 'REPLAY_STORE_UNAVAILABLE', 'UPSTREAM_UNAVAILABLE', 'INTERNAL', 'INTERNAL_PREREQUISITE_MISSING', 'ADMIN_CALLER_NOT_LOOPBACK', 'ADMIN_TOKEN_MISSING', 'ADMIN_TOKEN_INVALID'] as const) {
    t.notOk(countsTowardBan(reason), reason);
  }
});

t.test('ban lifecycle on the injected clock', async (t) => {
  const limits = configSchema.shape.limits.parse({ ban_after_failures: 3, ban_duration: '10m' });
  const peers = [{ id: 'calgary-01', cert: { cn: 'calgary-01' }, cert_sha256: [] }];
  const log = createOperationalLog('error');
  let clock = 1_800_000_000_000;
  const state = createSharedState({ limits, store: configSchema.shape.store.parse({}) }, { now: () => clock, log });
  const events: AuditEvent[] = [];
  // The peer index in force; a test swaps it like a config reload does.
  let index = createPeerIndex(peers);
  const bans = new Bans({ limits, peers }, state, {
    now: () => clock,
    log,
    audit: { write: (e) => void events.push(e), flush: () => undefined },
    peers: () => index,
  });
  const settle = () => new Promise((resolve) => setTimeout(resolve, 10));
  const conn = (address: string, cn?: string, sha256 = '00'.repeat(32)): ConnectionInfo => newConnection({
    remoteAddress: address, remotePort: 1, tlsVersion: 'TLSv1.3',
    peer: cn === undefined ? undefined : { subject: `CN=${cn}`, commonNames: [cn], dnsSans: [], uriSans: [], sha256, notAfterMs: clock + 1e9 },
    verifiedTrust: cn === undefined ? undefined : 'the trust in force', // a certificate the gate verified
  });

  await t.test('an unverified or unknown certificate never gets a POP counted', async (t) => {
    for (let i = 0; i < 3; i++) bans.recordOutcome('AUTH_PEER_UNKNOWN', conn('192.0.2.1', 'tokyo-05'), undefined);
    await settle();
    t.same(events.map((e) => e.replguard.ban?.key), ['addr:192.0.2.1']);
    t.ok(bans.bannedAtHandshake(conn('192.0.2.1')));
    t.notOk(bans.bannedAtHandshake(conn('192.0.2.2')));
  });

  await t.test("a certificate that did not verify names nobody, even a configured POP's name", async (t) => {
    const before = events.length;
    const forged = newConnection({ ...conn('192.0.2.9', 'calgary-01'), verifiedTrust: undefined });
    t.equal(bans.connectionPop(forged), undefined);
    t.same(bans.connectionKeys(forged), ['addr:192.0.2.9']);
    for (let i = 0; i < 3; i++) bans.recordOutcome('TLS_CLIENT_CERT_UNTRUSTED', forged, undefined);
    await settle();
    t.same(events.slice(before).map((e) => e.replguard.ban?.key), ['addr:192.0.2.9'], 'the address is banned, not pop:calgary-01');
    t.notOk(bans.bannedAtHandshake(conn('192.0.2.10', 'calgary-01')), 'the POP with its verified certificate is not');
  });

  await t.test('the POP the verified certificate names is counted, not the shared address', async (t) => {
    events.length = 0;
    bans.recordOutcome('ROUTE_TARGET_INVALID', conn('2001:db8:1:2::10', 'calgary-01'), undefined);
    bans.recordOutcome('ROUTE_TARGET_INVALID', conn('2001:db8:1:2::11', 'calgary-01'), undefined);
    bans.recordOutcome('HTTP_FRAMING_INVALID', conn('2001:db8:1:2:ffff::1', 'calgary-01'), undefined);
    await settle();
    t.same(events.map((e) => e.replguard.ban?.key), ['pop:calgary-01']);
    t.equal(events[0]!.event.kind, 'alert');
    const ban = await bans.check(['pop:calgary-01']);
    t.equal(ban?.until, clock + 600_000);
    t.equal(ban?.reason, 'HTTP_FRAMING_INVALID');
    t.ok(bans.bannedAtHandshake(conn('203.0.113.7', 'calgary-01')), 'the POP is cut at the handshake from any address');
    t.notOk(bans.bannedAtAccept('addr:2001:db8:1:2::/64'), 'its addresses are not banned');
  });

  await t.test('unauthenticated failures from an address never ban the POPs behind it', async (t) => {
    events.length = 0;
    for (let i = 0; i < 3; i++) bans.recordOutcome('AUTH_BEARER_INVALID', conn('198.51.100.50'), undefined);
    await settle();
    t.same(events.map((e) => e.replguard.ban?.key), ['addr:198.51.100.50']);
    t.notOk(bans.bannedAtAccept('addr:198.51.100.50'), 'one handshake a second still gets through (a POP behind it may show its certificate)');
    t.ok(bans.bannedAtAccept('addr:198.51.100.50'), 'the next ones within the second are cut at accept');
    clock += BANNED_ADDRESS_PROBE_MS;
    t.notOk(bans.bannedAtAccept('addr:198.51.100.50'), 'and one again a second later');
    t.ok(bans.bannedAtAccept('addr:198.51.100.50'));
    clock -= BANNED_ADDRESS_PROBE_MS; // the later subtests count from the first ban
    t.ok(bans.bannedAtHandshake(conn('198.51.100.50')), 'and after the handshake without a certificate');
    t.ok(bans.bannedAtHandshake(conn('198.51.100.50', 'denver-02')), 'a certificate naming no configured POP is no exception');
    t.notOk(bans.bannedAtHandshake(conn('198.51.100.60')), 'another address is not banned');
    const denver = createPeerIndex([...peers, { id: 'denver-02', cert: { cn: 'denver-02' }, cert_sha256: [] }]);
    index = denver;
    t.notOk(bans.bannedAtHandshake(conn('198.51.100.50', 'denver-02')), 'a verified POP behind the banned address is served');
    bans.noteVerifiedAddress(conn('198.51.100.50', 'denver-02'));
    t.notOk(bans.bannedAtAccept('addr:198.51.100.50'), 'once a POP verified from it, the address is not cut at accept: the handshake decides');
    index = createPeerIndex(peers);
    t.ok(bans.bannedAtHandshake(conn('198.51.100.50', 'denver-02')), 'denver-02 removed by a reload: the address ban applies to its certificate again');
  });

  await t.test('a pin added by a reload: the old certificate no longer names the POP, so it cannot get it banned', async (t) => {
    events.length = 0;
    const newCert = 'ab'.repeat(32);
    index = createPeerIndex([{ id: 'calgary-01', cert: { cn: 'calgary-01' }, cert_sha256: [newCert] }, { id: 'lima-04', cert: { cn: 'lima-04' }, cert_sha256: [] }]);
    const old = conn('192.0.2.99', 'lima-04', '11'.repeat(32));
    t.equal(bans.connectionPop(old), 'lima-04', 'memoised under the index in force');
    index = createPeerIndex([{ id: 'calgary-01', cert: { cn: 'calgary-01' }, cert_sha256: [newCert] }, { id: 'lima-04', cert: { cn: 'lima-04' }, cert_sha256: [newCert] }]);
    t.equal(bans.connectionPop(old), undefined, 'the same connection after the pin: no POP');
    for (let i = 0; i < 3; i++) bans.recordOutcome('AUTH_CERT_PIN_MISMATCH', old, undefined);
    await settle();
    t.same(events.map((e) => e.replguard.ban?.key), ['addr:192.0.2.99'], 'the address is banned, never lima-04');
    index = createPeerIndex(peers);
  });

  await t.test('a ban ends on the clock, and is reported once', async (t) => {
    events.length = 0;
    clock += 600_000 - 1;
    t.ok(await bans.check(['pop:calgary-01']), 'still banned a millisecond before the end');
    clock += 1;
    t.equal(await bans.check(['pop:calgary-01']), undefined, 'over at the end');
    await bans.sweep();
    await settle();
    t.same(events.map((e) => `${e.event.reason} ${e.replguard.ban?.key}`).sort(), [
      'LIMIT_BAN_ENDED addr:192.0.2.1', 'LIMIT_BAN_ENDED addr:192.0.2.9', 'LIMIT_BAN_ENDED addr:192.0.2.99', 'LIMIT_BAN_ENDED addr:198.51.100.50', 'LIMIT_BAN_ENDED pop:calgary-01',
    ]);
    t.notOk(bans.bannedAtHandshake(conn('192.0.2.1')));
  });

  await t.test('the count starts afresh after a ban; lifting clears it too', async (t) => {
    events.length = 0;
    bans.recordOutcome('AUTH_CERT_EXPIRED', conn('198.51.100.1'), undefined);
    bans.recordOutcome('AUTH_CERT_EXPIRED', conn('198.51.100.1'), undefined);
    await settle();
    t.same(events, [], 'two failures are not three');
    bans.recordOutcome('AUTH_CERT_EXPIRED', conn('198.51.100.1'), undefined);
    await settle();
    t.equal(events.length, 1);
    t.equal((await bans.lift('addr:198.51.100.1'))?.key, 'addr:198.51.100.1');
    t.equal(await bans.lift('addr:198.51.100.1'), undefined, 'not banned any more');
    bans.recordOutcome('AUTH_CERT_EXPIRED', conn('198.51.100.1'), undefined);
    await settle();
    t.equal(events.length, 1, 'one failure after a lift does not ban again');
  });
});
