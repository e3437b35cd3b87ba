/**
 * Reading the config file: YAML (duplicate keys refused) -> schema -> absolute paths ->
 * cross-field and file checks -> the role's feature checks (given by the caller: config/ does
 * not import the features it configures). Every problem is collected and raised together as a
 * ConfigError. No side effects beyond reading files.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import YAML from 'yaml';
import { ConfigError, formatPath, type ConfigCheck, type ConfigProblem, type Validation } from './errors.ts';
import { checkTrustedPath } from './files.ts';
import { configKeyPaths, keysUnder, suggestKey, type Role } from './keys.ts';
import { configSchema, type Config, type ControlPlaneConfig } from './schema.ts';
import { primaryConfigSchema, type PrimaryConfig } from './primary-schema.ts';
import { validateConfig, validatePrimaryConfig } from './validate.ts';

/** A guard config (role: backup). */
export interface LoadedConfig {
  readonly role: 'backup';
  readonly config: Readonly<Config>;
  /** Absolute path of the file it came from. */
  readonly file: string;
  /** Things that are legal but probably not meant (e.g. an empty peer list). */
  readonly warnings: readonly ConfigProblem[];
  /** SHA-256 of the file's text: equal fingerprints mean the file did not change (reload). */
  readonly fingerprint: string;
}

/** A signer config (role: primary). */
export interface LoadedPrimaryConfig {
  readonly role: 'primary';
  readonly config: Readonly<PrimaryConfig>;
  readonly file: string;
  readonly warnings: readonly ConfigProblem[];
}

/** Either role's config; `role` tells which. */
export type LoadedRoleConfig = LoadedConfig | LoadedPrimaryConfig;

/** The feature checks of each role, run after the shared rules (guard/config.ts, signer/config.ts list them). */
export interface RoleChecks {
  readonly backup: readonly ConfigCheck<Config>[];
  readonly primary: readonly ConfigCheck<PrimaryConfig>[];
}

/**
 * Reads a config of either role: the file's `role` key decides which schema applies. A config
 * file that anyone but root and this user could change (config/files.ts) is refused, together
 * with every other problem of its content.
 */
export function loadRoleConfig(file: string, checks: RoleChecks): LoadedRoleConfig {
  const absolute = resolve(file);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (err) {
    throw new ConfigError([{ path: '', message: `cannot read config file ${absolute}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }]);
  }
  const unsafe = checkConfigFile(absolute);
  if (!unsafe) return parseRoleConfig(text, absolute, checks);
  try {
    parseRoleConfig(text, absolute, checks);
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError([unsafe, ...err.problems]);
    throw err;
  }
  throw new ConfigError([unsafe]);
}

/**
 * Whether only root and this process's user can change the config file (it names every trust
 * anchor and key: whoever can edit it can make the guard trust their CA). Checked at start-up
 * and at every reload of the file.
 */
export function checkConfigFile(file: string): ConfigProblem | undefined {
  return checkTrustedPath(file, '');
}


/**
 * Parses config text of either role. The role comes from the file only (docs/security.md, findings: no environment-chosen mode); a file
 * without a valid role is judged by the guard's schema, which names the problem at `role`.
 */
export function parseRoleConfig(text: string, file: string, checks: RoleChecks): LoadedRoleConfig {
  const doc = YAML.parseDocument(text, { uniqueKeys: true, strict: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({ path: '', message: `YAML ${e.code} at line ${e.linePos?.[0]?.line ?? '?'}: ${e.message.split('\n')[0]}` })),
    );
  }
  const raw: unknown = doc.toJS({ maxAliasCount: 0 });
  const role: Role = (raw as { role?: unknown } | null)?.role === 'primary' ? 'primary' : 'backup';
  if (role === 'primary') {
    const parsed = primaryConfigSchema.safeParse(raw);
    if (!parsed.success) throw new ConfigError(parsed.error.issues.flatMap((issue) => describeIssue(issue, 'primary')));
    const config = resolvePrimaryPaths(parsed.data, dirname(file));
    const { problems, warnings } = runChecks(config, validatePrimaryConfig, checks.primary);
    if (problems.length > 0) throw new ConfigError(problems);
    return { role, config: deepFreeze(config), file, warnings };
  }
  const parsed = configSchema.safeParse(raw ?? {});
  if (!parsed.success) throw new ConfigError(parsed.error.issues.flatMap((issue) => describeIssue(issue, 'backup')));

  const config = resolvePaths(parsed.data, dirname(file));
  const { problems, warnings } = runChecks(config, validateConfig, checks.backup);
  if (problems.length > 0) throw new ConfigError(problems);
  return { role, config: deepFreeze(config), file, warnings, fingerprint: createHash('sha256').update(text).digest('hex') };
}

/** The shared rules, then each feature's checks; everything any of them found. */
function runChecks<C>(config: C, shared: (config: C) => Validation, features: readonly ConfigCheck<C>[]): Validation {
  const all = shared(config);
  for (const check of features) {
    const found = check(config);
    all.problems.push(...found.problems);
    all.warnings.push(...found.warnings);
  }
  return all;
}

/** A role: backup config, or a ConfigError at `role` for a signer config. */
export function requireBackup(loaded: LoadedRoleConfig): LoadedConfig {
  if (loaded.role !== 'backup') {
    throw new ConfigError([{ path: 'role', message: 'this is a role: primary (signer) config; this command needs a role: backup (guard) config' }]);
  }
  return loaded;
}

/**
 * Why a key of the other role is refused (cascade prevention, docs/security.md findings): the message says so
 * instead of a plain "unknown key".
 */
const CASCADE: Record<Role, string> = {
  backup: 'a signer key (role: primary); a backup only receives replication and never sends it on (cascade prevention): remove it, or set role: primary if this POP is a primary',
  primary: 'a guard key (role: backup); the signer never accepts inbound replication (cascade prevention): remove it, and run the guard from its own role: backup config',
};

/** Keys of the other role that are not about cascades: what to say instead. */
const OTHER_ROLE_HINTS: Record<Role, Record<string, string>> = {
  backup: {},
  primary: {
    'admin.token_file': "the signer's admin listener serves only /healthz and /readyz: it has no ban administration, so it takes no token; remove it",
  },
};

type Issue = { code: string; path: PropertyKey[]; message: string; keys?: string[] };

function describeIssue(issue: Issue, role: Role): ConfigProblem[] {
  const path = formatPath(issue.path);
  if (issue.code === 'unrecognized_keys' && issue.keys) {
    const parent = issue.path.filter((p) => typeof p !== 'number').join('.');
    const known = keysUnder(parent, role);
    const otherRole = configKeyPaths(role === 'backup' ? 'primary' : 'backup');
    return issue.keys.map((key) => {
      const keyPath = path ? `${path}.${key}` : key;
      const schemaPath = parent ? `${parent}.${key}` : key;
      const hint = OTHER_ROLE_HINTS[role][schemaPath];
      if (hint !== undefined) return { path: keyPath, message: hint };
      if (otherRole.includes(schemaPath)) return { path: keyPath, message: CASCADE[role] };
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
    peers: config.peers.map((peer) => ({ ...peer, token_files: peer.token_files.map(at), signing_keys: peer.signing_keys.map(at) })),
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
    admin: { ...config.admin, ...(config.admin.token_file !== undefined ? { token_file: at(config.admin.token_file) } : {}) },
    audit: { ...config.audit, ...(config.audit.file !== undefined ? { file: at(config.audit.file) } : {}) },
    store: {
      ...config.store,
      ...(config.store.password_file !== undefined ? { password_file: at(config.store.password_file) } : {}),
      ...(config.store.ca_file !== undefined ? { ca_file: at(config.store.ca_file) } : {}),
    },
    ...(config.control_plane !== undefined ? { control_plane: resolveControlPlanePaths(config.control_plane, at) } : {}),
  };
}

function resolveControlPlanePaths(cp: ControlPlaneConfig, at: (p: string) => string): ControlPlaneConfig {
  return { ...cp, keys: cp.keys.map(at), registry_file: at(cp.registry_file) };
}

function resolvePrimaryPaths(config: PrimaryConfig, base: string): PrimaryConfig {
  const at = (p: string) => resolve(base, p);
  const { credentials } = config;
  return {
    ...config,
    backup: { ...config.backup, ca_file: at(config.backup.ca_file) },
    ...(config.client_tls !== undefined ? { client_tls: { cert_file: at(config.client_tls.cert_file), key_file: at(config.client_tls.key_file) } } : {}),
    credentials: {
      ...(credentials.token_file !== undefined ? { token_file: at(credentials.token_file) } : {}),
      ...(credentials.jwt !== undefined ? { jwt: { ...credentials.jwt, key_file: at(credentials.jwt.key_file) } } : {}),
      ...(credentials.jwt_token_file !== undefined ? { jwt_token_file: at(credentials.jwt_token_file) } : {}),
    },
    signing_keys: config.signing_keys.map(at),
    ...(config.control_plane !== undefined ? { control_plane: resolveControlPlanePaths(config.control_plane, at) } : {}),
  };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
