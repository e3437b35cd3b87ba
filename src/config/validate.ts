/**
 * The rules over a parsed config that belong to no one feature: listeners, peers, limits, the
 * store, the audit trail and their files. Each feature checks its own part (`ConfigCheck`s listed
 * by guard/config.ts and signer/config.ts). Returns every problem found; `warnings` are legal
 * settings that are probably not meant.
 */
import { isLoopback } from '../core/loopback.ts';
import type { ConfigProblem, Validation } from './errors.ts';
import { GEN_TOKEN_HINT, secretWeakness } from '../crypto/secret-strength.ts';
import { checkAppendableFile, checkReadableFile, checkSecretFile, readPasswordFile } from './files.ts';
import { certSelectorKey, connectionLimits, type Config } from './schema.ts';
import { SIGNER_ROUTE, type PrimaryConfig } from './primary-schema.ts';

const IMPLEMENTED_METHODS = new Set(['mtls', 'bearer', 'jwt', 'signature']);

export function validateConfig(config: Config): Validation {
  const problems: ConfigProblem[] = [];
  const warnings: ConfigProblem[] = [];
  const problem = (path: string, message: string) => problems.push({ path, message });

  // Authentication methods.
  const seen = new Set<string>();
  config.auth.methods.forEach((m, i) => {
    if (seen.has(m)) problem(`auth.methods[${i}]`, `"${m}" is listed twice`);
    seen.add(m);
    if (!IMPLEMENTED_METHODS.has(m)) problem(`auth.methods[${i}]`, `"${m}" is not available in this version; use: ${[...IMPLEMENTED_METHODS].join(', ')}`);
  });
  // Peers: unique ids, unique certificate selectors (one certificate must never name two POPs).
  const ids = new Map<string, number>();
  const selectors = new Map<string, number>();
  config.peers.forEach((peer, i) => {
    const prev = ids.get(peer.id);
    if (prev !== undefined) problem(`peers[${i}].id`, `"${peer.id}" is already used by peers[${prev}]; each POP is listed once`);
    ids.set(peer.id, i);
    const [field, value] = Object.entries(peer.cert).find(([, v]) => v !== undefined)!;
    const key = certSelectorKey(peer.cert);
    const other = selectors.get(key);
    if (other !== undefined) problem(`peers[${i}].cert`, `${field} "${value}" also names peers[${other}]; a certificate must identify one POP`);
    selectors.set(key, i);
  });
  if (config.peers.length === 0 && (config.control_plane?.peers ?? 'off') === 'off') {
    warnings.push({ path: 'peers', message: 'no peers are configured: every request will be refused' });
  }

  if (config.listen.port !== 0 && config.listen.port === config.admin.port && config.listen.host === config.admin.host) {
    problem('admin.port', `same address as listen (${config.listen.host}:${config.listen.port}); pick another port`);
  }
  if (!isLoopback(config.admin.host)) {
    const bans = config.admin.token_file === undefined ? 'only loopback callers' : 'only callers with the admin token';
    warnings.push({ path: 'admin.host', message: `${config.admin.host} is not loopback: /healthz, /readyz and /metrics are reachable from the network (ban administration answers ${bans})` });
  }
  validateLimitsAndStore(config, problem);

  // Files.
  const files: Array<[string, string | undefined, boolean]> = [
    ['tls.cert_file', config.tls.cert_file, false],
    ['tls.key_file', config.tls.key_file, true],
    ['tls.client_ca_file', config.tls.client_ca_file, false],
    ['tls.crl_file', config.tls.crl_file, false],
    ['store.password_file', config.store.password_file, true],
    ['store.ca_file', config.store.ca_file, false],
  ];
  for (const [keyPath, file, secret] of files) {
    if (file === undefined) continue;
    const p = secret ? checkSecretFile(file, keyPath) : checkReadableFile(file, keyPath);
    if (p) problems.push(p);
    else if (keyPath === 'store.password_file' && config.store.type === 'redis') {
      // The Redis password guards the nonce store (replay protection) and the bans: a shared secret like the others.
      const weakness = secretWeakness(readPasswordFile(file), `${GEN_TOKEN_HINT} (and set it as the Redis password)`);
      if (weakness) problem(keyPath, `${file}: weak secret: ${weakness}`);
    }
  }

  // Audit trail: somewhere to go.
  if (!config.audit.stdout && config.audit.file === undefined) {
    problem('audit', 'the audit trail has no destination; set audit.stdout: true or audit.file: /var/log/replguard/audit.ndjson');
  }
  if (config.audit.file !== undefined) {
    const p = checkAppendableFile(config.audit.file, 'audit.file');
    if (p) problems.push(p);
  }

  return { problems, warnings };
}

/** Rate and ban windows (rate-limiter-flexible counts in whole seconds) and the store block. */
function validateLimitsAndStore(config: Config, problem: (path: string, message: string) => void): void {
  const caps = connectionLimits(config.limits);
  if (caps.unauthenticated > caps.total) problem('limits.max_unauthenticated_connections', `${caps.unauthenticated} is more than limits.max_connections (${caps.total}); keep part of max_connections for authenticated POPs`);
  if (caps.perAddress > caps.unauthenticated) problem('limits.max_unauthenticated_per_address', `${caps.perAddress} is more than limits.max_unauthenticated_connections (${caps.unauthenticated}): one address could take every unauthenticated slot`);
  for (const key of ['rate_burst_window', 'failure_window', 'ban_duration'] as const) {
    const ms = config.limits[key];
    if (ms < 1000 || ms % 1000 !== 0) problem(`limits.${key}`, `${ms} ms is not a whole number of seconds (at least 1s); write e.g. 10m`);
  }
  const store = config.store;
  if (store.type === 'memory') {
    for (const key of ['url', 'password_file', 'ca_file'] as const) {
      if (store[key] !== undefined) problem(`store.${key}`, 'only used with store.type: redis; remove it or set type: redis');
    }
    return;
  }
  if (store.url === undefined) {
    problem('store.url', 'required with store.type: redis; write e.g. redis://127.0.0.1:6379/0');
    return;
  }
  let url: URL;
  try {
    url = new URL(store.url);
  } catch {
    problem('store.url', 'not a URL; write e.g. redis://127.0.0.1:6379/0');
    return;
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') problem('store.url', 'use redis:// or rediss:// (TLS)');
  if (url.password) problem('store.url', 'a password in the URL ends up in logs and process lists; put it in a file named by store.password_file');
  if (url.search || url.hash) problem('store.url', 'a query or fragment is not allowed');
  if (url.pathname !== '' && url.pathname !== '/' && !/^\/\d{1,2}$/.test(url.pathname)) problem('store.url', 'the path is the database number, e.g. /0');
  if (store.ca_file !== undefined && url.protocol !== 'rediss:') problem('store.ca_file', 'only used with a rediss:// (TLS) URL');
}

/**
 * The signer's (role: primary) cross-field rules and files: a loopback listener unless the risk
 * is named, an https backup URL without path or credentials, and every file it reads (signing
 * keys, credential, TLS client material) loaded exactly as `serve` loads it.
 */
export function validatePrimaryConfig(config: PrimaryConfig): Validation {
  const problems: ConfigProblem[] = [];
  const warnings: ConfigProblem[] = [];
  const problem = (path: string, message: string) => problems.push({ path, message });

  if (!isLoopback(config.listen.host) && !config.listen.unsafe_listen_non_loopback) {
    problem('listen.host', `${config.listen.host} is not a loopback address: anyone who reaches the signer can replicate as ${config.pop_id}; keep it on loopback beside the primary, or set listen.unsafe_listen_non_loopback: true`);
  }
  if (config.listen.port !== 0 && config.listen.port === config.admin.port && config.listen.host === config.admin.host) {
    problem('admin.port', `same address as listen (${config.listen.host}:${config.listen.port}); pick another port`);
  }
  if (!isLoopback(config.admin.host)) {
    warnings.push({ path: 'admin.host', message: `${config.admin.host} is not loopback: the health endpoints are reachable from the network` });
  }

  let url: URL | undefined;
  try {
    url = new URL(config.backup.url);
  } catch {
    problem('backup.url', `"${config.backup.url}" is not a URL; write e.g. https://zurich-01.example.net:8443`);
  }
  if (url) {
    if (url.protocol !== 'https:') problem('backup.url', 'only https:// is allowed: replication leaves this host, so it always goes over verified TLS');
    if (url.username || url.password) problem('backup.url', 'credentials in the URL are not allowed; use credentials.*');
    if (url.search || url.hash) problem('backup.url', 'a query or fragment is not allowed');
    if (url.pathname !== '/') problem('backup.url', `a path is not allowed; the signer posts to ${SIGNER_ROUTE.path} on the guard`);
  }
  if (config.backup.id === config.pop_id) {
    problem('backup.id', `"${config.backup.id}" is this POP's own id; a POP never replicates to itself`);
  }

  const c = config.credentials;
  if (!config.client_tls && c.token_file === undefined && c.jwt === undefined && c.jwt_token_file === undefined) {
    problem('client_tls', 'nothing would name this POP to the guard: configure client_tls (mTLS) and/or one of credentials.token_file, credentials.jwt, credentials.jwt_token_file');
  }

  return { problems, warnings };
}
