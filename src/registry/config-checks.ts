/**
 * `control_plane` checks of both roles: the HQ keys load (all or nothing) and the registry file
 * is readable. The document itself is verified at start-up (registry/monitor.ts), where a
 * refused or mismatching registry stops the process with the reason (exit 2).
 */
import { collectProblems, type Validation } from '../config/errors.ts';
import { checkReadableFile } from '../config/files.ts';
import type { ControlPlaneConfig } from '../config/schema.ts';
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
