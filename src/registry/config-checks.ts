/**
 * `control_plane` checks of both roles: the HQ keys load (all or nothing), exactly one source
 * (a readable registry file, or an https registry URL with this POP's TLS material and a cache
 * file), and a cache file whose folder this user can write. The document itself is verified at
 * start-up (registry/monitor.ts), where a refused or mismatching registry stops the process with
 * the reason (exit 2). The guard's `control_plane.peers` has its own rules
 * (checkRegistryPeersConfig).
 */
import { accessSync, constants, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { collectProblems, type Validation } from '../config/errors.ts';
import { checkReadableFile, checkTrustedPath } from '../config/files.ts';
import type { Config, ControlPlaneConfig } from '../config/schema.ts';
import { checkRegistryUrl, loadHqTls } from './hq-source.ts';
import { loadRegistryKeys } from './keys.ts';

export function checkControlPlaneConfig(config: Readonly<{ control_plane?: ControlPlaneConfig | undefined }>): Validation {
  const problems: Validation['problems'] = [];
  const warnings: Validation['warnings'] = [];
  const cp = config.control_plane;
  if (!cp) return { problems, warnings };
  collectProblems(problems, () => loadRegistryKeys(cp.keys, 'control_plane.keys'));
  if (cp.registry_file !== undefined && cp.registry_url !== undefined) {
    problems.push({ path: 'control_plane.registry_url', message: 'set registry_file or registry_url, not both: one source is the authority' });
  } else if (cp.registry_file === undefined && cp.registry_url === undefined) {
    problems.push({ path: 'control_plane', message: 'set registry_file (a signed registry on disk) or registry_url (HQ\'s https endpoint)' });
  }
  if (cp.registry_file !== undefined) {
    const unreadable = checkReadableFile(cp.registry_file, 'control_plane.registry_file');
    if (unreadable) problems.push(unreadable);
    if (cp.tls !== undefined) problems.push({ path: 'control_plane.tls', message: 'only used with registry_url; remove it' });
  }
  if (cp.registry_url !== undefined) {
    const bad = checkRegistryUrl(cp.registry_url);
    if (bad) problems.push({ path: 'control_plane.registry_url', message: bad });
    if (cp.tls === undefined) problems.push({ path: 'control_plane.tls', message: 'registry_url needs tls: { ca_file, cert_file, key_file } (HQ\'s CA and this POP\'s client certificate)' });
    else collectProblems(problems, () => loadHqTls(cp.tls!, Date.now()));
    if (cp.cache_file === undefined) problems.push({ path: 'control_plane.cache_file', message: 'registry_url needs a cache_file: without it a restart while HQ is unreachable cannot start, and the rollback floor is lost' });
  }
  if (cp.cache_file !== undefined && cp.cache_file === cp.registry_file) {
    problems.push({ path: 'control_plane.cache_file', message: 'is registry_file itself: the cache is this process\'s own copy; give it a file of its own' });
  } else if (cp.cache_file !== undefined) {
    const folder = dirname(cp.cache_file);
    const problem = checkCacheFolder(folder);
    if (problem) problems.push({ path: 'control_plane.cache_file', message: problem });
  }
  if (cp.expiry_warning <= cp.poll_interval) {
    warnings.push({ path: 'control_plane.expiry_warning', message: 'shorter than poll_interval: the registry may run out before any warning is written' });
  }
  return { problems, warnings };
}

/**
 * The guard's `control_plane.peers`: `replace` takes every peer from the registry, so `peers`
 * must be empty (an entry there would look in force and be ignored), and the registry carries
 * no bearer secrets (it is not secret), so `bearer` in `auth.methods` would admit none of its
 * POPs: an error with `replace`, a warning with `merge`.
 */
export function checkRegistryPeersConfig(config: Readonly<Pick<Config, 'control_plane' | 'peers' | 'auth'>>): Validation {
  const problems: Validation['problems'] = [];
  const warnings: Validation['warnings'] = [];
  const mode = config.control_plane?.peers ?? 'off';
  if (mode === 'off') return { problems, warnings };
  const bearer = config.auth.methods.includes('bearer');
  if (mode === 'replace') {
    if (config.peers.length > 0) problems.push({ path: 'peers', message: 'control_plane.peers is replace: every peer comes from the registry; move these entries to the registry, or set control_plane.peers to merge' });
    if (bearer) problems.push({ path: 'control_plane.peers', message: 'auth.methods lists bearer, and the registry carries no bearer secrets: no POP could be admitted; use merge with those POPs in peers, or take bearer out of auth.methods' });
  } else if (bearer) {
    warnings.push({ path: 'control_plane.peers', message: 'auth.methods lists bearer, and the registry carries no bearer secrets: only the POPs in peers can be admitted' });
  }
  return { problems, warnings };
}

function checkCacheFolder(folder: string): string | undefined {
  try {
    if (!statSync(folder).isDirectory()) return `${folder} is not a folder`;
    accessSync(folder, constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return `its folder ${folder} does not exist; create it (writable by this user only)`;
    if (code === 'EACCES') return `its folder ${folder} is not writable by this user; fix its owner or mode`;
    return `its folder ${folder} cannot be used: ${code ?? String(err)}`;
  }
  // The cache is the rollback floor: a folder others can write to would let them remove it.
  return checkTrustedPath(folder, 'control_plane.cache_file', 'folder')?.message;
}
