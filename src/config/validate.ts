/**
 * Cross-field rules and file checks over a parsed config. Returns every problem found;
 * `warnings` are legal settings that are probably not meant.
 */
import { isIP } from 'node:net';
import { normalisePath } from '../route/normalise.ts';
import type { ConfigProblem } from './errors.ts';
import { checkReadableFile, checkSecretFile } from './files.ts';
import type { Config } from './schema.ts';

export interface Validation {
  problems: ConfigProblem[];
  warnings: ConfigProblem[];
}

const IMPLEMENTED_METHODS = new Set(['mtls']);

export function validateConfig(config: Config): Validation {
  const problems: ConfigProblem[] = [];
  const warnings: ConfigProblem[] = [];
  const problem = (path: string, message: string) => problems.push({ path, message });

  if (config.role === 'primary') {
    problem('role', 'role "primary" (the signer) is not available in this version; only "backup" (the guard) is');
  }

  // Authentication methods.
  const seen = new Set<string>();
  config.auth.methods.forEach((m, i) => {
    if (seen.has(m)) problem(`auth.methods[${i}]`, `"${m}" is listed twice`);
    seen.add(m);
    if (!IMPLEMENTED_METHODS.has(m)) problem(`auth.methods[${i}]`, `"${m}" is not available in this version; use: ${[...IMPLEMENTED_METHODS].join(', ')}`);
  });
  if (!config.auth.methods.includes('mtls')) {
    problem('auth.methods', 'mtls is required: the peer identity comes from the client certificate');
  }

  // Peers: unique ids, unique certificate selectors (one certificate must never name two POPs).
  const ids = new Map<string, number>();
  const selectors = new Map<string, number>();
  config.peers.forEach((peer, i) => {
    const prev = ids.get(peer.id);
    if (prev !== undefined) problem(`peers[${i}].id`, `"${peer.id}" is already used by peers[${prev}]; each POP is listed once`);
    ids.set(peer.id, i);
    const [field, value] = Object.entries(peer.cert).find(([, v]) => v !== undefined)!;
    const key = `${field}=${field === 'dns_san' ? String(value).toLowerCase() : value}`;
    const other = selectors.get(key);
    if (other !== undefined) problem(`peers[${i}].cert`, `${field} "${value}" also names peers[${other}]; a certificate must identify one POP`);
    selectors.set(key, i);
  });
  if (config.peers.length === 0) {
    warnings.push({ path: 'peers', message: 'no peers are configured: every request will be refused' });
  }

  // Routes: normal form, no query, no duplicates.
  const routes = new Set<string>();
  config.routes.forEach((route, i) => {
    const normal = normalisePath(route.path);
    if (normal !== route.path) {
      problem(`routes[${i}].path`, `"${route.path}" is not a normalised absolute path (no query, "//", ".", "..", or encoded "/" or ".")`);
    }
    const key = `${route.method} ${route.path}`;
    if (routes.has(key)) problem(`routes[${i}]`, `${key} is listed twice`);
    routes.add(key);
  });

  // Upstream: plain HTTP on loopback unless the risk is named.
  let upstream: URL | undefined;
  try {
    upstream = new URL(config.upstream.url);
  } catch {
    problem('upstream.url', `"${config.upstream.url}" is not a URL; write e.g. http://127.0.0.1:8080`);
  }
  if (upstream) {
    if (upstream.protocol !== 'http:') problem('upstream.url', 'only http:// upstreams are supported (the backup beside the guard)');
    if (upstream.username || upstream.password) problem('upstream.url', 'credentials in the URL are not allowed');
    if (upstream.search || upstream.hash) problem('upstream.url', 'a query or fragment is not allowed');
    if (upstream.pathname !== '/') problem('upstream.url', 'a path is not allowed; request paths are forwarded as they are');
    if (!isLoopback(upstream.hostname) && !config.upstream.unsafe_allow_plaintext_upstream_host) {
      problem('upstream.url', `${upstream.hostname} is not a loopback address; keep the backup on loopback, or set upstream.unsafe_allow_plaintext_upstream_host: true`);
    }
  }

  if (config.listen.port !== 0 && config.listen.port === config.admin.port && config.listen.host === config.admin.host) {
    problem('admin.port', `same address as listen (${config.listen.host}:${config.listen.port}); pick another port`);
  }
  if (!isLoopback(config.admin.host)) {
    warnings.push({ path: 'admin.host', message: `${config.admin.host} is not loopback: /metrics and ban administration are reachable from the network` });
  }

  // Files.
  const files: Array<[string, string | undefined, boolean]> = [
    ['tls.cert_file', config.tls.cert_file, false],
    ['tls.key_file', config.tls.key_file, true],
    ['tls.client_ca_file', config.tls.client_ca_file, false],
    ['tls.crl_file', config.tls.crl_file, false],
  ];
  for (const [keyPath, file, secret] of files) {
    if (file === undefined) continue;
    const p = secret ? checkSecretFile(file, keyPath) : checkReadableFile(file, keyPath);
    if (p) problems.push(p);
  }

  return { problems, warnings };
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1';
  return false;
}
