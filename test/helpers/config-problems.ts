// The operator problems a config text gets from parseConfig (none when it loads), for the config
// unit tests.
import { ConfigError } from '../../src/config/errors.ts';
import { parseConfig } from '../../src/guard/config.ts';

export function configProblems(text: string, file = '/etc/replguard/replguard.yaml'): Array<{ path: string; message: string }> {
  try {
    parseConfig(text, file);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
}
