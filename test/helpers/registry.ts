/**
 * What the registry tests share: an HQ signing key (and its public file for control_plane.keys),
 * a registry payload with the usual two POPs, the control_plane section that polls a test HQ
 * (test/helpers/hq.ts) with a client certificate, and readers of the audit trail and the cache.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import type { RegistryAlgorithm, RegistryPayloadInput } from '../../src/registry/document.ts';
import { generateRegistryKeyPair, parseRegistrySigningKey, type RegistrySigningKey } from '../../src/registry/keys.ts';
import type { AuditRecord, GuardProcess } from './guard.ts';
import { startHq, type Hq } from './hq.ts';
import type { CertFiles, TestPki } from './pki.ts';
import { atomicWrite } from './reload.ts';
import { startBackup, type BackupProcess } from './upstream.ts';

export const nowS = (): number => Math.floor(Date.now() / 1000);

/** An HQ key pair: the signing key, and its public key written for control_plane.keys. */
export function makeHqKey(dir: string, alg: RegistryAlgorithm = 'EdDSA'): { key: RegistrySigningKey; publicFile: string } {
  const pair = generateRegistryKeyPair(alg);
  return { key: parseRegistrySigningKey(pair.privatePem), publicFile: atomicWrite(join(dir, `hq-${alg}.pub`), pair.publicPem, 0o644) };
}

/** calgary-01 a primary replicating to zurich-01 a backup, valid for an hour; override any member. */
export function registryPayload(serial: number, over: Partial<RegistryPayloadInput> = {}): RegistryPayloadInput {
  return {
    format: 1,
    serial,
    iat: nowS() - 5,
    exp: nowS() + 3600,
    pops: [
      { id: 'calgary-01', role: 'primary', replicates_to: ['zurich-01'], cert: { cn: 'calgary-01' } },
      { id: 'zurich-01', role: 'backup', cert: { cn: 'zurich-01' } },
    ],
    ...over,
  };
}

/** control_plane polling `url` with `client`'s certificate, a fresh cache file, 1 s polls. */
export function hqControlPlane(pki: TestPki, url: string, keyFile: string, client: CertFiles, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    keys: [keyFile],
    registry_url: url,
    tls: { ca_file: pki.caFile, cert_file: client.cert, key_file: client.key, server_name: 'localhost' },
    cache_file: join(mkdtempSync(join(pki.dir, 'registry-cache-')), 'registry.cache'),
    poll_interval: '1s',
    timeout: '3s',
    ...over,
  };
}

/** A test HQ and a demo backup, both stopped at the end of `t`. */
export async function startHqAndBackup(t: Test, pki: TestPki): Promise<{ hq: Hq; backup: BackupProcess }> {
  const backup = await startBackup();
  const hq = await startHq(pki);
  t.teardown(async () => {
    await hq.close();
    await backup.stop();
  });
  return { hq, backup };
}

export const registryEvents = (p: GuardProcess, reason: string): AuditRecord[] => p.audit().filter((e) => e.event.reason === reason);

/** The serial of the document in a cache file (decoded, not verified: the product verifies it). */
export function cachedSerial(file: string): number {
  const cache = JSON.parse(readFileSync(file, 'utf8')) as { registry: string };
  return (JSON.parse(Buffer.from(cache.registry.split('.')[1]!, 'base64url').toString('utf8')) as { serial: number }).serial;
}
