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
