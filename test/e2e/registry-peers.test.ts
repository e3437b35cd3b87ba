// Peers from the control plane's registry (control_plane.peers: merge), through the real guard:
// under a steady stream of signed requests, a POP HQ adds is admitted at the next poll with the
// identity and Ed25519 key the registry gives it, without a restart; a POP HQ removes is refused
// from its next request (AUTH_PEER_UNKNOWN), on a kept-alive connection opened before too; the
// config's own peer is never disturbed; every request gets an answer and exactly one audit event,
// and only the admitted ones reach the backup. When the new peer set cannot be built (a config
// key file gone), the removed POP is refused all the same (REGISTRY_PEER_NOT_CURRENT).
import { mkdirSync, mkdtempSync, unlinkSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { RegistryPayloadInput } from '../../src/registry/document.ts';
import { generateRegistryKeyPair, parseRegistrySigningKey } from '../../src/registry/keys.ts';
import { signRegistry } from '../../src/registry/verify.ts';
import { parseSignKey, type SignKey } from '../../src/replay/keys.ts';
import { newWebhookId, signatureHeaders } from '../../src/replay/signing.ts';
import { adminGet } from '../helpers/admin.ts';
import { baseConfig, runCli, startGuard, writeConfig, type AuditRecord, type GuardProcess } from '../helpers/guard.ts';
import { clientTls, makePki, wireBody, type CertFiles } from '../helpers/pki.ts';
import { parsePrometheusText, sampleValue } from '../helpers/prometheus.ts';
import { atomicWrite, sighup, waitFor } from '../helpers/reload.ts';
import { makeEd25519Key, type Ed25519Key } from '../helpers/signing.ts';
import { startBackup } from '../helpers/upstream.ts';

const pki = makePki([]);
const dir = mkdtempSync(join(tmpdir(), 'replguard-registry-peers-'));
const hq = generateRegistryKeyPair('EdDSA');
const hqKey = parseRegistrySigningKey(hq.privatePem);
const hqPublic = atomicWrite(join(dir, 'hq.pub'), hq.publicPem, 0o644);

interface Pop {
  readonly id: string;
  readonly cert: CertFiles;
  readonly key: Ed25519Key;
  readonly sign: SignKey;
}
const pop = (id: string): Pop => {
  const key = makeEd25519Key();
  return { id, cert: pki.client(id), key, sign: parseSignKey(key.privatePem) };
};
const [calgary, denver, vienna] = [pop('calgary-01'), pop('denver-01'), pop('vienna-01')];

const nowS = () => Math.floor(Date.now() / 1000);
const primaryEntry = (p: Pop) => ({ id: p.id, role: 'primary' as const, replicates_to: ['zurich-01'], cert: { cn: p.id }, signature_keys: [p.key.whpk] });
const registry = (serial: number, primaries: Pop[]): RegistryPayloadInput => ({
  format: 1,
  serial,
  iat: nowS() - 5,
  exp: nowS() + 3600,
  pops: [{ id: 'zurich-01', role: 'backup', cert: { cn: 'zurich-01' } }, ...primaries.map(primaryEntry)],
});
const writeRegistry = async (file: string, payload: RegistryPayloadInput) => atomicWrite(file, await signRegistry(payload, hqKey), 0o644);

interface Answer {
  readonly status: number;
  readonly id: string;
  readonly reused: boolean;
  readonly connection: string | undefined;
}

/** One signed request of `p` (a fresh nonce), on `agent` or a connection of its own. */
function send(port: number, p: Pop, agent?: Agent): Promise<Answer> {
  // One clock reading for the body and the header: two would differ across a second boundary
  // (BODY_TIMESTAMP_MISMATCH), a fault of the test, not of the guard.
  const timestamp = nowS();
  const body = Buffer.from(wireBody(p.cert, { timestamp }));
  const headers = signatureHeaders([p.sign], body, newWebhookId(), String(timestamp));
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port, method: 'POST', path: '/api/replication/apply', ...clientTls(pki.caFile, p.cert), agent: agent ?? false, timeout: 10_000,
      headers: { 'content-type': 'application/json', 'content-length': body.length, ...headers },
    }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, id: String(res.headers['x-replguard-request-id']), reused: req.reusedSocket, connection: res.headers.connection }));
    });
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

const events = (guard: GuardProcess, reason: string): AuditRecord[] => guard.audit().filter((e) => e.event.reason === reason);
const requestEvent = (guard: GuardProcess, id: string) => guard.audit().find((e) => e.http !== undefined && e.replguard?.request_id === id);
const metric = async (guard: GuardProcess, name: string, labels: Record<string, string> = {}) => sampleValue(parsePrometheusText((await adminGet(guard.adminPort, '/metrics')).body), name, labels);

function guardConfig(upstream: string, registryFile: string, viennaKeyFile: string) {
  return baseConfig(pki, upstream, {
    auth: { methods: ['mtls', 'signature'], reload_interval: '1h' },
    // vienna-01 is the config's own peer; calgary-01 and denver-01 come from the registry.
    peers: [{ id: 'vienna-01', cert: { cn: 'vienna-01' }, signing_keys: [viennaKeyFile] }],
    control_plane: { keys: [hqPublic], registry_file: registryFile, poll_interval: '1s', peers: 'merge' },
  });
}

t.test('a POP added and a POP removed at HQ under a steady stream', async (t) => {
  const backup = await startBackup();
  const file = join(dir, 'stream.jws');
  await writeRegistry(file, registry(1, [calgary]));
  const viennaKey = atomicWrite(join(dir, 'vienna.whpk'), vienna.key.whpk);
  const guard = await startGuard(guardConfig(backup.url, file, viennaKey));
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });
  t.ok(await waitFor(() => events(guard, 'REGISTRY_PEERS_CHANGED').length === 1), 'the start-up peers are audited');
  const start = events(guard, 'REGISTRY_PEERS_CHANGED');
  t.same([start[0]!.replguard.registry.added, start[0]!.replguard.registry.peer_mode, start[0]!.replguard.registry.peers_from_registry], [['calgary-01'], 'merge', 1]);
  t.equal(await metric(guard, 'replguard_registry_peers'), 1, 'one peer from the registry');

  // denver-01 is not a peer yet: its certificate is valid but names nobody.
  const early = await send(guard.port, denver);
  t.equal(early.status, 403, 'denver-01 before HQ adds it: 403');
  t.ok(await waitFor(() => requestEvent(guard, early.id)?.event.reason === 'AUTH_PEER_UNKNOWN'), 'as AUTH_PEER_UNKNOWN');

  // A kept-alive connection of calgary-01, opened (and served) before HQ removes it, then idle.
  const idleAgent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => idleAgent.destroy());
  t.equal((await send(guard.port, calgary, idleAgent)).status, 200, 'calgary-01, from the registry, admitted with the registry\'s key');

  // The stream: calgary-01 on a kept-alive connection and on new ones, vienna-01 (config) kept
  // alive, denver-01 once HQ added it. Each answer is kept with the phase it was sent in: the
  // phase moves on only once the test has seen the registry change audited.
  let phase = 0;
  let stopped = false;
  const answers: Array<{ pop: string; loop: string; phase: number; answer?: Answer; error?: string }> = [];
  const byLoop = new Map<string, number>();
  const loop = async (name: string, p: Pop, keepAlive: boolean, from = 0) => {
    const agent = keepAlive ? new Agent({ keepAlive: true, maxSockets: 1 }) : undefined;
    while (!stopped) {
      if (phase < from) {
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      const sentIn = phase;
      try {
        answers.push({ pop: p.id, loop: name, phase: sentIn, answer: await send(guard.port, p, agent) });
      } catch (err) {
        answers.push({ pop: p.id, loop: name, phase: sentIn, error: (err as Error).message });
      }
      byLoop.set(name, (byLoop.get(name) ?? 0) + 1);
    }
    agent?.destroy();
  };
  const loops = [loop('calgary kept alive', calgary, true), loop('calgary new connections', calgary, false), loop('vienna kept alive', vienna, true), loop('denver kept alive', denver, true, 1)];
  /** Resolves once every running loop has had `n` more answers. */
  const more = (n: number, names: string[]) => {
    const base = new Map(names.map((name) => [name, byLoop.get(name) ?? 0]));
    return waitFor(() => names.every((name) => (byLoop.get(name) ?? 0) >= base.get(name)! + n), 20_000);
  };
  const all = ['calgary kept alive', 'calgary new connections', 'vienna kept alive'];
  t.ok(await more(5, all), 'the stream runs');

  // HQ adds denver-01 (serial 2): admitted at the next poll, no restart.
  await writeRegistry(file, registry(2, [calgary, denver]));
  t.ok(await waitFor(() => events(guard, 'REGISTRY_PEERS_CHANGED').length === 2), 'the new peer is audited');
  const added = events(guard, 'REGISTRY_PEERS_CHANGED')[1]!.replguard.registry;
  t.same([added.serial, added.added, added.removed, added.changed], [2, ['denver-01'], [], []]);
  phase = 1;
  t.ok(await more(5, [...all, 'denver kept alive']), 'denver-01 joins the stream');
  t.equal(await metric(guard, 'replguard_registry_peers'), 2);

  // HQ removes calgary-01 (serial 3): refused from its next request.
  await writeRegistry(file, registry(3, [denver]));
  t.ok(await waitFor(() => events(guard, 'REGISTRY_PEERS_CHANGED').length === 3), 'the removal is audited');
  const removed = events(guard, 'REGISTRY_PEERS_CHANGED')[2]!.replguard.registry;
  t.same([removed.serial, removed.added, removed.removed, removed.changed, removed.peers_from_registry], [3, [], ['calgary-01'], [], 1]);
  phase = 2;
  t.ok(await more(5, [...all, 'denver kept alive']), 'the stream goes on after the removal');

  // The idle kept-alive connection of calgary-01, opened before the removal: refused and closed.
  const idle = await send(guard.port, calgary, idleAgent);
  t.same([idle.status, idle.reused, idle.connection], [403, true, 'close'], 'the connection opened before the removal: 403, and closed');
  t.ok(await waitFor(() => requestEvent(guard, idle.id)?.event.reason === 'AUTH_PEER_UNKNOWN'), 'as AUTH_PEER_UNKNOWN');
  stopped = true;
  await Promise.all(loops);

  // Count every answer.
  t.same(answers.filter((a) => a.error !== undefined).map((a) => `${a.loop}: ${a.error}`), [], 'every request got an HTTP answer');
  const answered = answers.filter((a) => a.answer !== undefined) as Array<{ pop: string; loop: string; phase: number; answer: Answer }>;
  t.ok(await waitFor(() => answered.every((a) => requestEvent(guard, a.answer.id) !== undefined)), 'every answer has its audit event');
  const reasonOf = (a: { answer: Answer }) => `${a.answer.status} ${requestEvent(guard, a.answer.id)!.event.reason}`;
  const ids = guard.audit().filter((e) => e.http !== undefined).map((e) => e.replguard.request_id);
  t.equal(new Set(ids).size, ids.length, 'exactly one audit event per request');

  const removedAfter = answered.filter((a) => a.pop === 'calgary-01' && a.phase === 2);
  t.ok(removedAfter.length >= 10, `calgary-01 kept sending after the removal (${removedAfter.length} requests)`);
  t.same([...new Set(removedAfter.map(reasonOf))], ['403 AUTH_PEER_UNKNOWN'], 'every request of the removed POP after the change: refused with its reason');
  const before = new Set(answered.filter((a) => a.pop === 'calgary-01' && a.phase < 2).map(reasonOf));
  t.same([...before].filter((r) => r !== '200 FORWARDED' && r !== '403 AUTH_PEER_UNKNOWN'), [], 'before it: served (or refused once the swap raced ahead), nothing else');
  t.ok(answered.some((a) => a.pop === 'calgary-01' && a.phase < 2 && a.answer.status === 200), 'calgary-01 was served before the removal');
  const others = answered.filter((a) => a.pop !== 'calgary-01');
  t.same([...new Set(others.map(reasonOf))], ['200 FORWARDED'], `the others unaffected (${others.length} requests of vienna-01 and denver-01, all forwarded)`);
  const keptAlive = answered.filter((a) => a.loop === 'calgary kept alive' && a.phase === 2);
  t.same(keptAlive.slice(1).filter((a) => a.answer.reused), [], 'each refusal closed the kept-alive connection: the next request needed a new one');

  const forwarded = guard.audit().filter((e) => e.http !== undefined && e.event.reason === 'FORWARDED').length;
  t.equal(backup.received().length, forwarded, 'exactly the forwarded requests reached the backup');
  t.equal(await metric(guard, 'replguard_registry_peer_changes_total', { change: 'added' }), 2, 'calgary-01 at start-up, then denver-01');
  t.equal(await metric(guard, 'replguard_registry_peer_changes_total', { change: 'removed' }), 1);
  t.equal(await metric(guard, 'replguard_registry_events_total', { reason: 'REGISTRY_PEERS_CHANGED', refusal: 'none' }), 3);
  t.equal(events(guard, 'REGISTRY_PEERS_NOT_APPLIED').length, 0);
});

t.test('a peer set that cannot be built: the POP HQ removed is refused all the same, until it is', async (t) => {
  const backup = await startBackup();
  const file = join(dir, 'failed.jws');
  await writeRegistry(file, registry(1, [calgary]));
  const keys = join(dir, 'vienna-keys');
  mkdirSync(keys, { mode: 0o700 });
  const viennaKey = atomicWrite(join(keys, 'vienna.whpk'), vienna.key.whpk);
  const guard = await startGuard(guardConfig(backup.url, file, viennaKey));
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  t.equal((await send(guard.port, calgary, agent)).status, 200, 'calgary-01 served on a kept-alive connection');

  // vienna-01's key file goes away (its own reload takes the key out of force), then HQ removes
  // calgary-01: the new pipeline would need vienna-01's key file, and cannot be built.
  unlinkSync(viennaKey);
  await writeRegistry(file, registry(2, []));
  t.ok(await waitFor(() => events(guard, 'REGISTRY_PEERS_NOT_APPLIED').length === 1), 'REGISTRY_PEERS_NOT_APPLIED');
  const failed = events(guard, 'REGISTRY_PEERS_NOT_APPLIED')[0]!;
  t.equal(failed.event.kind, 'alert');
  t.same(failed.replguard.registry.removed, ['calgary-01'], 'it names the POP it could not remove');
  t.match(failed.replguard.detail, 'peers[0].signing_keys[0]', 'and the config key that failed');
  const refused = await send(guard.port, calgary, agent);
  t.same([refused.status, refused.reused], [503, true], 'calgary-01 on its open connection: refused');
  t.ok(await waitFor(() => requestEvent(guard, refused.id)?.event.reason === 'REGISTRY_PEER_NOT_CURRENT'), 'as REGISTRY_PEER_NOT_CURRENT');
  t.equal((await send(guard.port, calgary)).status, 503, 'and on a new connection');

  // The key file is back: SIGHUP builds the peer set, and calgary-01 is simply no peer any more.
  atomicWrite(viennaKey, vienna.key.whpk);
  await sighup(guard, 'signing keys');
  t.ok(await waitFor(() => events(guard, 'REGISTRY_PEERS_CHANGED').length === 2), 'the peer set is in force after all');
  t.same(events(guard, 'REGISTRY_PEERS_CHANGED')[1]!.replguard.registry.removed, ['calgary-01']);
  const after = await send(guard.port, calgary);
  t.equal(after.status, 403);
  t.ok(await waitFor(() => requestEvent(guard, after.id)?.event.reason === 'AUTH_PEER_UNKNOWN'), 'as AUTH_PEER_UNKNOWN');
  const served = await send(guard.port, vienna);
  t.equal(served.status, 200, 'vienna-01 with its key back: served');
  t.ok(await waitFor(() => requestEvent(guard, served.id) !== undefined));
  const forwarded = guard.audit().filter((e) => e.http !== undefined && e.event.reason === 'FORWARDED').length;
  t.same([forwarded, backup.received().length], [2, 2], 'only the two forwarded requests reached the backup');
});

t.test('check-config: replace takes every peer from the registry, and the registry carries no bearer secrets', async (t) => {
  const file = join(dir, 'check.jws');
  await writeRegistry(file, registry(1, [calgary]));
  const viennaKey = atomicWrite(join(dir, 'vienna-check.whpk'), vienna.key.whpk);
  const base = guardConfig('http://127.0.0.1:9', file, viennaKey) as Record<string, any>;
  const withPlane = (over: Record<string, unknown>) => ({ ...base, ...over, control_plane: { ...base.control_plane, peers: 'replace' } });

  const kept = await runCli(['check-config', '-c', writeConfig(withPlane({}))]);
  t.equal(kept.code, 2, 'replace with entries in peers: exit 2');
  t.match(kept.stderr, /peers: control_plane\.peers is replace/, 'naming peers and the fix');
  const bearer = await runCli(['check-config', '-c', writeConfig(withPlane({ peers: [], auth: { methods: ['mtls', 'bearer'] } }))]);
  t.equal(bearer.code, 2, 'replace with bearer: exit 2');
  t.match(bearer.stderr, /control_plane\.peers: auth\.methods lists bearer/);
  const fine = await runCli(['check-config', '-c', writeConfig(withPlane({ peers: [] }))]);
  t.equal(fine.code, 0, fine.stderr);
  t.notMatch(fine.stderr, /no peers are configured/, 'no empty-peers warning when the registry names them');
});
