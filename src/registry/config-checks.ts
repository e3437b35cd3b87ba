/**
 * `control_plane` checks of both roles: the HQ keys load (all or nothing) and the registry file
 * is readable. The document itself is verified at start-up (registry/monitor.ts), where a
 * refused or mismatching registry stops the process with the reason (exit 2). The guard's
 * `control_plane.peers` has its own rules (checkRegistryPeersConfig).
 */
import { collectProblems, type Validation } from '../config/errors.ts';
import { checkReadableFile } from '../config/files.ts';
import type { Config, ControlPlaneConfig } from '../config/schema.ts';
import { loadRegistryKeys } from './keys.ts';

export function checkControlPlaneConfig(config: Readonly<{ control_plane?: ControlPlaneConfig | undefined }>): Validation {
  const problems: Validation['problems'] = [];
  const warnings: Validation['warnings'] = [];
  const cp = config.control_plane;
  if (!cp) return { problems, warnings };
  collectProblems(problems, () => loadRegistryKeys(cp.keys, 'control_plane.keys'));
  const unreadable = checkReadableFile(cp.registry_file, 'control_plane.registry_file');
  if (unreadable) problems.push(unreadable);
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
