/**
 * The signer's (role: primary) config: the shared rules of config/ plus its material (signing
 * keys, credentials, TLS client material), loaded exactly as `serve` loads it.
 */
import { collectProblems, type ConfigCheck, type Validation } from '../config/errors.ts';
import type { PrimaryConfig } from '../config/primary-schema.ts';
import { checkControlPlaneConfig } from '../registry/config-checks.ts';
import { loadSignerMaterial } from './material.ts';

function checkSignerMaterial(config: Readonly<PrimaryConfig>): Validation {
  const problems: Validation['problems'] = [];
  collectProblems(problems, () => loadSignerMaterial(config));
  return { problems, warnings: [] };
}

export const SIGNER_CONFIG_CHECKS: readonly ConfigCheck<PrimaryConfig>[] = [checkSignerMaterial, checkControlPlaneConfig];
