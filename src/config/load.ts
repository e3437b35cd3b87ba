/**
 * Reading the config file: YAML (duplicate keys refused) -> schema -> absolute paths ->
 * cross-field and file checks. Every problem is collected and raised together as a ConfigError.
 * No side effects beyond reading files.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import YAML from 'yaml';
import { ConfigError, formatPath, type ConfigProblem } from './errors.ts';
import { keysUnder, suggestKey } from './keys.ts';
import { configSchema, type Config } from './schema.ts';
import { validateConfig } from './validate.ts';

export interface LoadedConfig {
  readonly config: Readonly<Config>;
  /** Absolute path of the file it came from. */
  readonly file: string;
  /** Things that are legal but probably not meant (e.g. an empty peer list). */
  readonly warnings: readonly ConfigProblem[];
  /** SHA-256 of the file's text: equal fingerprints mean the file did not change (reload). */
  readonly fingerprint: string;
}

export function loadConfig(file: string): LoadedConfig {
  const absolute = resolve(file);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (err) {
    throw new ConfigError([{ path: '', message: `cannot read config file ${absolute}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }]);
  }
  return parseConfig(text, absolute);
}

/** Parses config text as if read from `file` (relative paths resolve against its folder). */
export function parseConfig(text: string, file: string): LoadedConfig {
  const doc = YAML.parseDocument(text, { uniqueKeys: true, strict: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({ path: '', message: `YAML ${e.code} at line ${e.linePos?.[0]?.line ?? '?'}: ${e.message.split('\n')[0]}` })),
    );
  }
  const raw: unknown = doc.toJS({ maxAliasCount: 0 });
  const parsed = configSchema.safeParse(raw ?? {});
  if (!parsed.success) throw new ConfigError(parsed.error.issues.flatMap(describeIssue));

  const config = resolvePaths(parsed.data, dirname(file));
  const { problems, warnings } = validateConfig(config);
  if (problems.length > 0) throw new ConfigError(problems);
  return { config: deepFreeze(config), file, warnings, fingerprint: createHash('sha256').update(text).digest('hex') };
}

type Issue = { code: string; path: PropertyKey[]; message: string; keys?: string[] };

function describeIssue(issue: Issue): ConfigProblem[] {
  const path = formatPath(issue.path);
  if (issue.code === 'unrecognized_keys' && issue.keys) {
    const known = keysUnder(issue.path.filter((p) => typeof p !== 'number').join('.'));
    return issue.keys.map((key) => {
      const guess = suggestKey(key, known);
      return {
        path: path ? `${path}.${key}` : key,
        message: `unknown key; ${guess ? `did you mean '${guess}'?` : `remove it (allowed here: ${known.join(', ')})`}`,
      };
    });
  }
  if (issue.code === 'invalid_type' && /received undefined/.test(issue.message)) {
    return [{ path, message: 'required key is missing' }];
  }
  return [{ path, message: issue.message.replace(/^Invalid input: /, '') }];
}

function resolvePaths(config: Config, base: string): Config {
  const at = (p: string) => resolve(base, p);
  return {
    ...config,
    tls: {
      ...config.tls,
      cert_file: at(config.tls.cert_file),
      key_file: at(config.tls.key_file),
      client_ca_file: at(config.tls.client_ca_file),
      ...(config.tls.crl_file !== undefined ? { crl_file: at(config.tls.crl_file) } : {}),
    },
    peers: config.peers.map((peer) => ({ ...peer, token_files: peer.token_files.map(at) })),
    auth: {
      ...config.auth,
      ...(config.auth.jwt !== undefined
        ? {
          jwt: {
            ...config.auth.jwt,
            public_keys: config.auth.jwt.public_keys.map((k) => ({ ...k, path: at(k.path) })),
            ...(config.auth.jwt.revoked_ids_file !== undefined ? { revoked_ids_file: at(config.auth.jwt.revoked_ids_file) } : {}),
          },
        }
        : {}),
    },
  };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
