/** One operator mistake: where it is (a key path or a CLI argument) and how to fix it. */
export interface ConfigProblem {
  readonly path: string;
  readonly message: string;
}

/**
 * Every problem found in a config file or command line, reported together (exit code 2).
 * Never shown to a remote client: it may name files and keys.
 */
export class ConfigError extends Error {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    super(problems.map((p) => `${p.path || '(root)'}: ${p.message}`).join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Joins a zod-style path into `peers[1].cert.cn`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}

/** What a config check found: `problems` refuse the config, `warnings` are legal settings that are probably not meant. */
export interface Validation {
  problems: ConfigProblem[];
  warnings: ConfigProblem[];
}

/**
 * One feature's checks of its own part of the config (its files loaded exactly as the feature
 * loads them). Each role lists its checks (guard/config.ts, signer/config.ts) and config/load.ts
 * runs them after the schema, so that config/ never imports the features it configures.
 */
export type ConfigCheck<C> = (config: Readonly<C>) => Validation;

/** Runs `load` and collects its ConfigError's problems; any other error propagates (a bug, not a config mistake). */
export function collectProblems(problems: ConfigProblem[], load: () => unknown): void {
  try {
    load();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }
}
