/**
 * Peers from the registry (`control_plane.peers`, the guard only): the registry's primaries
 * whose `replicates_to` lists this guard's `pop_id` are authorised peers, with the certificate
 * identity, pins and Ed25519 signature keys the registry gives them. A backup in the registry is
 * never a peer (cascade prevention: a backup sends no replication).
 *
 * - `merge`: the config's `peers` plus the registry's. The config wins a conflict, entry and all:
 *   it is the local operator's explicit, reviewed decision; its entry is one consistent unit
 *   (token files and HMAC keys go with its certificate identity), and mixing halves of two
 *   entries would admit a peer neither source described; and a stolen HQ signing key cannot
 *   re-point a POP this backup pinned locally. A conflict is a registry POP whose id, or whose
 *   certificate name, a config peer already has: the registry's entry is left out and reported.
 * - `replace`: the registry's peers only (the config check keeps `peers` empty).
 * - Either way, two registry POPs that one certificate name would both match are both left out
 *   (a certificate must identify one POP: fails closed), and reported.
 *
 * Pure: the same inputs give the same set, so the guard can tell what a new registry changed.
 */
import { certSelectorKey, type AuthorisedPeer, type PeerConfig, type RegistryPeerMode } from '../config/schema.ts';
import type { Registry } from './document.ts';

/** A registry POP that is not admitted although it replicates to this guard, and why. */
export interface PeerConflict {
  readonly id: string;
  readonly reason: string;
}

export interface PeerSet {
  /** Every peer in force: the config's (unless `replace`), then the registry's. */
  readonly peers: readonly AuthorisedPeer[];
  /** The ids admitted from the registry. */
  readonly fromRegistry: readonly string[];
  readonly conflicts: readonly PeerConflict[];
}

/** The registry's primaries that replicate to `popId`, as peers. */
export function registryPeers(registry: Registry, popId: string): AuthorisedPeer[] {
  return registry.payload.pops
    .filter((pop) => pop.role === 'primary' && pop.replicates_to.includes(popId))
    .map((pop) => ({
      id: pop.id,
      cert: { ...pop.cert },
      cert_sha256: [...pop.cert_sha256],
      token_files: [],
      signing_keys: [],
      signature_keys: [...pop.signature_keys],
      from: 'registry' as const,
    }));
}

/** The peers in force for `mode` under `registry` (the config's alone when `off` or without a registry). */
export function peerSet(configPeers: readonly PeerConfig[], registry: Registry | undefined, popId: string, mode: RegistryPeerMode): PeerSet {
  if (mode === 'off' || registry === undefined) return { peers: configPeers, fromRegistry: [], conflicts: [] };
  const local = mode === 'merge' ? configPeers : [];
  const localIds = new Set(local.map((p) => p.id));
  const localNames = new Map(local.map((p) => [certSelectorKey(p.cert), p.id]));
  const candidates = registryPeers(registry, popId);
  const byName = new Map<string, string[]>();
  for (const peer of candidates) {
    const key = certSelectorKey(peer.cert);
    byName.set(key, [...(byName.get(key) ?? []), peer.id]);
  }
  const conflicts: PeerConflict[] = [];
  const admitted: AuthorisedPeer[] = [];
  for (const peer of candidates) {
    const key = certSelectorKey(peer.cert);
    const owner = localNames.get(key);
    const sharing = byName.get(key)!;
    if (localIds.has(peer.id)) conflicts.push({ id: peer.id, reason: 'also in peers: the config\'s entry is in force' });
    else if (owner !== undefined) conflicts.push({ id: peer.id, reason: `its certificate name ${key} is the one of ${owner} in peers: left out` });
    else if (sharing.length > 1) conflicts.push({ id: peer.id, reason: `its certificate name ${key} also names ${sharing.filter((id) => id !== peer.id).join(', ')} in the registry: none of them is admitted` });
    else admitted.push(peer);
  }
  return { peers: [...local, ...admitted], fromRegistry: admitted.map((p) => p.id), conflicts };
}

/** One digest-like text per peer id: what the entry in force says (two equal texts, one entry). */
export function peerEntries(peers: readonly AuthorisedPeer[]): ReadonlyMap<string, string> {
  return new Map(peers.map((p) => [p.id, JSON.stringify(p)]));
}

/** The peer ids added, removed and changed from `before` to `after`. */
export function peerChanges(before: ReadonlyMap<string, string>, after: ReadonlyMap<string, string>): { added: string[]; removed: string[]; changed: string[] } {
  const added = [...after.keys()].filter((id) => !before.has(id));
  const removed = [...before.keys()].filter((id) => !after.has(id));
  const changed = [...after.entries()].filter(([id, entry]) => before.has(id) && before.get(id) !== entry).map(([id]) => id);
  return { added, removed, changed };
}
