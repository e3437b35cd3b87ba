// Peers from the registry (control_plane.peers): which registry POPs become this guard's peers,
// and who wins a conflict with `peers` (the config, entry and all); two registry POPs one
// certificate would name are both left out. Documents are signed and verified for real.
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { PeerConfig } from '../../../src/config/schema.ts';
import type { Registry, RegistryPayloadInput } from '../../../src/registry/document.ts';
import { generateRegistryKeyPair, loadRegistryKeys, parseRegistrySigningKey } from '../../../src/registry/keys.ts';
import { peerChanges, peerEntries, peerSet } from '../../../src/registry/peers.ts';
import { signRegistry, verifyRegistry } from '../../../src/registry/verify.ts';

const NOW_S = 1_800_000_000;
const now = () => NOW_S * 1000;
const dir = mkdtempSync(join(tmpdir(), 'replguard-registry-peers-'));
const hq = generateRegistryKeyPair('EdDSA');
const pub = join(dir, 'hq.pub');
writeFileSync(pub, hq.publicPem);
chmodSync(pub, 0o600);
const keys = loadRegistryKeys([pub], 'control_plane.keys');
const key = parseRegistrySigningKey(hq.privatePem);
const WHPK = `whpk_${Buffer.alloc(32, 7).toString('base64')}`;

async function registryOf(pops: RegistryPayloadInput['pops']): Promise<Registry> {
  const jws = await signRegistry({ format: 1, serial: 1, iat: NOW_S - 60, exp: NOW_S + 3600, pops }, key);
  return verifyRegistry(jws, keys, { now });
}
const backup = (id: string) => ({ id, role: 'backup' as const, cert: { cn: id } });
const primary = (id: string, to: string[], cert: Record<string, string> = { cn: id }) => ({ id, role: 'primary' as const, replicates_to: to, cert, signature_keys: [WHPK] });
const configPeer = (id: string, cert: Record<string, string> = { cn: id }): PeerConfig => ({ id, cert, cert_sha256: [], token_files: [], signing_keys: [] });

t.test('only the primaries that replicate to this guard are peers, with the registry\'s identity and keys', async (t) => {
  const registry = await registryOf([backup('zurich-01'), backup('oslo-01'), primary('calgary-01', ['zurich-01']), primary('denver-01', ['oslo-01'])]);
  const set = peerSet([], registry, 'zurich-01', 'replace');
  t.same(set.fromRegistry, ['calgary-01'], 'denver-01 replicates to oslo-01 only; backups are never peers');
  t.same(set.peers, [{ id: 'calgary-01', cert: { cn: 'calgary-01' }, cert_sha256: [], token_files: [], signing_keys: [], signature_keys: [WHPK], from: 'registry' }]);
  t.same(set.conflicts, []);
  const config = [configPeer('vienna-01')];
  t.equal(peerSet(config, registry, 'zurich-01', 'off').peers, config, 'off: the config\'s peers, untouched');
  t.equal(peerSet(config, undefined, 'zurich-01', 'merge').peers, config, 'no registry: the config\'s peers');
  t.same(peerSet(config, registry, 'zurich-01', 'merge').peers.map((p) => p.id), ['vienna-01', 'calgary-01'], 'merge: both');
  t.same(peerSet(config, registry, 'zurich-01', 'replace').peers.map((p) => p.id), ['calgary-01'], 'replace: the registry\'s only');
});

t.test('merge: a POP id or certificate name the config has keeps the config\'s entry', async (t) => {
  const registry = await registryOf([backup('zurich-01'), primary('calgary-01', ['zurich-01'], { cn: 'someone-else' }), primary('denver-01', ['zurich-01'], { cn: 'vienna-01' }), primary('oslo-01', ['zurich-01'])]);
  const local = [configPeer('calgary-01'), configPeer('vienna-01')];
  const set = peerSet(local, registry, 'zurich-01', 'merge');
  t.same(set.peers.map((p) => p.id), ['calgary-01', 'vienna-01', 'oslo-01']);
  t.equal(set.peers[0], local[0], 'calgary-01 is the config\'s entry, not the registry\'s (another CN)');
  t.same(set.fromRegistry, ['oslo-01']);
  t.same(set.conflicts.map((c) => c.id), ['calgary-01', 'denver-01']);
  t.match(set.conflicts[1]!.reason, /cn=vienna-01 is the one of vienna-01 in peers/, 'denver-01 names vienna-01\'s certificate: left out');
});

t.test('two registry POPs one certificate would name: neither is admitted', async (t) => {
  const registry = await registryOf([backup('zurich-01'), primary('calgary-01', ['zurich-01'], { dns_san: 'pop.example.org' }), primary('denver-01', ['zurich-01'], { dns_san: 'POP.example.org' }), primary('oslo-01', ['zurich-01'])]);
  const set = peerSet([], registry, 'zurich-01', 'replace');
  t.same(set.fromRegistry, ['oslo-01'], 'DNS names compare case-insensitively, as the peer index does');
  t.same(set.conflicts.map((c) => c.id), ['calgary-01', 'denver-01']);
});

t.test('changes between two peer sets', async (t) => {
  const before = peerEntries(peerSet([], await registryOf([backup('zurich-01'), primary('calgary-01', ['zurich-01']), primary('denver-01', ['zurich-01'])]), 'zurich-01', 'replace').peers);
  const after = peerEntries(peerSet([], await registryOf([backup('zurich-01'), primary('calgary-01', ['zurich-01'], { cn: 'calgary-01.new' }), primary('oslo-01', ['zurich-01'])]), 'zurich-01', 'replace').peers);
  t.same(peerChanges(before, after), { added: ['oslo-01'], removed: ['denver-01'], changed: ['calgary-01'] });
  t.same(peerChanges(after, after), { added: [], removed: [], changed: [] });
});
