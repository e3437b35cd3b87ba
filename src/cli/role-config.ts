/** Reading a config of either role for the commands: the file's `role` key picks the checks. */
import { loadRoleConfig as load, parseRoleConfig as parse, type LoadedRoleConfig, type RoleChecks } from '../config/load.ts';
import { GUARD_CONFIG_CHECKS } from '../guard/config.ts';
import { SIGNER_CONFIG_CHECKS } from '../signer/config.ts';

const CHECKS: RoleChecks = { backup: GUARD_CONFIG_CHECKS, primary: SIGNER_CONFIG_CHECKS };

/** Reads a config file of either role, with every check of that role. */
export function loadRoleConfig(file: string): LoadedRoleConfig {
  return load(file, CHECKS);
}

/** Parses config text of either role as if read from `file`. */
export function parseRoleConfig(text: string, file: string): LoadedRoleConfig {
  return parse(text, file, CHECKS);
}
