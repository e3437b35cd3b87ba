/**
 * The guard's (role: backup) config: the shared rules of config/ plus the checks each feature
 * owns for its part. A new stage with its own config adds its check to this list.
 */
import type { ConfigCheck } from '../config/errors.ts';
import { checkConfigFile, loadRoleConfig, parseRoleConfig, requireBackup, type LoadedConfig, type RoleChecks } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { checkCredentialConfig } from '../auth/config-checks.ts';
import { checkUpstreamConfig } from '../proxy/config-checks.ts';
import { checkSignatureConfig } from '../replay/config-checks.ts';
import { checkControlPlaneConfig, checkRegistryPeersConfig } from '../registry/config-checks.ts';
import { checkRouteConfig } from '../route/route-stage.ts';
import { checkAdminConfig } from '../service/admin-access.ts';

export const GUARD_CONFIG_CHECKS: readonly ConfigCheck<Config>[] = [
  checkCredentialConfig,
  checkSignatureConfig,
  checkRouteConfig,
  checkUpstreamConfig,
  checkAdminConfig,
  checkControlPlaneConfig,
  checkRegistryPeersConfig,
];

/** Only the guard's checks: a signer config read here is refused at `role` anyway. */
const GUARD_ONLY: RoleChecks = { backup: GUARD_CONFIG_CHECKS, primary: [] };

/** Reads a guard (role: backup) config; a signer config is refused at `role`. */
export function loadConfig(file: string): LoadedConfig {
  return requireBackup(loadRoleConfig(file, GUARD_ONLY));
}

/** Parses guard config text as if read from `file` (relative paths resolve against its folder). */
export function parseConfig(text: string, file: string): LoadedConfig {
  return requireBackup(parseRoleConfig(text, file, GUARD_ONLY));
}

export { checkConfigFile, type LoadedConfig };
