/**
 * Reading the config file: YAML (duplicate keys refused) -> schema -> absolute paths ->
 * cross-field and file checks -> the role's feature checks (given by the caller: config/ does
 * not import the features it configures). Every problem is collected and raised together as a
 * ConfigError. No side effects beyond reading files.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import YAML, { LineCounter } from 'yaml';
import type { z } from 'zod';
import { ConfigError, formatPath, type ConfigCheck, type ConfigProblem, type Validation } from './errors.ts';
import { checkTrustedPath } from './files.ts';
import { LEGACY_KEY_HINTS } from './legacy.ts';
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
  const { doc, lineCounter } = parseYaml(text, '');
  const raw: unknown = doc.toJS({ maxAliasCount: 0 });
  const role: Role = (raw as { role?: unknown } | null)?.role === 'primary' ? 'primary' : 'backup';
  const at = (problems: readonly ConfigProblem[]) => problems.map((p) => withLine(p, doc, lineCounter));
  if (role === 'primary') {
    const result = parseWithChecks(raw, primaryConfigSchema, 'primary', (c) => {
      const config = resolvePrimaryPaths(c, dirname(file));
      return { config, ...runChecks(config, validatePrimaryConfig, checks.primary) };
    });
    if (!result.config) throw new ConfigError(at(result.problems));
    return { role, config: deepFreeze(result.config), file, warnings: at(result.warnings) };
  }
  const result = parseWithChecks(raw ?? {}, configSchema, 'backup', (c) => {
    const config = resolvePaths(c, dirname(file));
    return { config, ...runChecks(config, validateConfig, checks.backup) };
  });
  if (!result.config) throw new ConfigError(at(result.problems));
  return { role, config: deepFreeze(result.config), file, warnings: at(result.warnings), fingerprint: createHash('sha256').update(text).digest('hex') };
}

/**
 * YAML text as a document (duplicate keys refused), or a ConfigError at `path` with every syntax
 * error, each with its line and column: nothing after a syntax error can be trusted.
 */
export function parseYaml(text: string, path: string): { doc: YAML.Document; lineCounter: LineCounter } {
  const lineCounter = new LineCounter();
  const doc = YAML.parseDocument(text, { uniqueKeys: true, strict: true, prettyErrors: false, lineCounter });
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => {
      const { line, col } = lineCounter.linePos(e.pos[0]);
      return { path, message: `YAML ${e.code} at line ${line}, column ${col}: ${e.message.split('\n')[0]}` };
    }));
  }
  return { doc, lineCounter };
}

/**
 * The schema, then (given a parsed config) the checks. When the schema refuses some values, the
 * checks still run on the config without them (their defaults instead), so that one run reports
 * the file and cross-field problems too, not only the first phase's; a check's problem at a path
 * the schema already refused is left out (it would judge the default, not what was written).
 */
function parseWithChecks<S extends z.ZodType, C>(
  raw: unknown,
  schema: S,
  role: Role,
  check: (parsed: z.output<S>) => Validation & { config: C },
): { config?: C; problems: ConfigProblem[]; warnings: ConfigProblem[] } {
  const parsed = schema.safeParse(raw);
  if (parsed.success) {
    const checked = check(parsed.data);
    return checked.problems.length > 0 ? { problems: checked.problems, warnings: [] } : checked;
  }
  const problems = parsed.error.issues.flatMap((issue) => describeIssue(issue as Issue, role, raw));
  const retry = schema.safeParse(withoutIssues(raw, parsed.error.issues as Issue[]));
  if (retry.success) {
    const refused = problems.map((p) => p.path);
    const related = (path: string) => refused.some((r) => r === '' || path === r || path.startsWith(`${r}.`) || path.startsWith(`${r}[`) || r.startsWith(`${path}.`) || r.startsWith(`${path}[`));
    problems.push(...check(retry.data).problems.filter((p) => !related(p.path)));
  }
  return { problems, warnings: [] };
}

/** A copy of `raw` without the values the schema refused (an array with a refused item is left out whole). */
function withoutIssues(raw: unknown, issues: readonly Issue[]): unknown {
  const copy: unknown = structuredClone(raw);
  for (const issue of issues) {
    const firstIndex = issue.path.findIndex((p) => typeof p === 'number');
    const path = firstIndex >= 0 ? issue.path.slice(0, firstIndex) : issue.path;
    if (issue.code === 'unrecognized_keys' && firstIndex < 0 && issue.keys) {
      const parent = getAt(copy, path);
      if (parent && typeof parent === 'object') for (const key of issue.keys) delete (parent as Record<string, unknown>)[key];
      continue;
    }
    if (path.length === 0) continue;
    const parent = getAt(copy, path.slice(0, -1));
    if (parent && typeof parent === 'object') delete (parent as Record<PropertyKey, unknown>)[path[path.length - 1]!];
  }
  return copy;
}

function getAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let node = value;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

/** `message (line 12)` when the problem's key path is in the file: the line of its key (of its item, in a list). */
function withLine(problem: ConfigProblem, doc: YAML.Document, lineCounter: LineCounter): ConfigProblem {
  if (!problem.path || / \(line \d+\)$/.test(problem.message)) return problem;
  const parts = problem.path.match(/[^.[\]]+/g)?.map((p) => (/^\d+$/.test(p) ? Number(p) : p)) ?? [];
  for (let n = parts.length; n > 0; n--) {
    const start = startOf(doc.getIn(parts.slice(0, n - 1), true), parts[n - 1]!);
    if (start !== undefined) return { path: problem.path, message: `${problem.message} (line ${lineCounter.linePos(start).line})` };
  }
  return problem;
}

/** Where `key` (a map key or a list index) of a YAML collection node starts in the text. */
function startOf(parent: unknown, key: string | number): number | undefined {
  if (YAML.isMap(parent)) {
    const pair = parent.items.find((p) => YAML.isScalar(p.key) && p.key.value === key);
    return YAML.isScalar(pair?.key) ? pair.key.range?.[0] : undefined;
  }
  if (YAML.isSeq(parent) && typeof key === 'number') {
    const item = parent.items[key];
    return YAML.isNode(item) ? item.range?.[0] : undefined;
  }
  return undefined;
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

/** Keys of the security review's replication.yaml: where they moved (a signer's `auth:` only when it is the old one, else it is a guard key). */
function legacyHint(role: Role, schemaPath: string, raw: unknown): string | undefined {
  const hint = LEGACY_KEY_HINTS[role][schemaPath];
  if (hint === undefined || schemaPath !== 'auth') return hint;
  const auth = (raw as { auth?: unknown } | null)?.auth;
  const old = ['method', 'mtls_cert', 'mtls_key', 'mtls_ca', 'token_file', 'token_rotation_interval'];
  return auth !== null && typeof auth === 'object' && old.some((k) => k in auth) ? hint : undefined;
}

type Issue = { code: string; path: PropertyKey[]; message: string; keys?: string[] };

function describeIssue(issue: Issue, role: Role, raw: unknown): ConfigProblem[] {
  const path = formatPath(issue.path);
  if (issue.code === 'unrecognized_keys' && issue.keys) {
    const parent = issue.path.filter((p) => typeof p !== 'number').join('.');
    const known = keysUnder(parent, role);
    const otherRole = configKeyPaths(role === 'backup' ? 'primary' : 'backup');
    return issue.keys.map((key) => {
      const keyPath = path ? `${path}.${key}` : key;
      const schemaPath = parent ? `${parent}.${key}` : key;
      const legacy = legacyHint(role, schemaPath, raw);
      if (legacy !== undefined) return { path: keyPath, message: legacy };
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

function resolveControlPlanePaths<T extends ControlPlaneConfig>(cp: T, at: (p: string) => string): T {
  return {
    ...cp,
    keys: cp.keys.map(at),
    ...(cp.registry_file !== undefined ? { registry_file: at(cp.registry_file) } : {}),
    ...(cp.cache_file !== undefined ? { cache_file: at(cp.cache_file) } : {}),
    ...(cp.tls !== undefined ? { tls: { ...cp.tls, ca_file: at(cp.tls.ca_file), cert_file: at(cp.tls.cert_file), key_file: at(cp.tls.key_file) } } : {}),
  };
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
