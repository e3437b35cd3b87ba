/**
 * The upstream part of a guard config: plain HTTP to the backup beside the guard (loopback
 * unless the risk is named), no credentials, query or path in its URL, and no forwarded client
 * header the backup could take for the guard's word.
 */
import type { Validation } from '../config/errors.ts';
import { REPLAY_DEFAULTS, type Config } from '../config/schema.ts';
import { isLoopback } from '../core/loopback.ts';
import { DEFAULT_FORWARD_HEADERS, forwardHeaderProblem } from './headers.ts';

export function checkUpstreamConfig(config: Readonly<Config>): Validation {
  const problems: Validation['problems'] = [];
  const problem = (path: string, message: string) => problems.push({ path, message });
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

  const forwarded = new Set<string>();
  config.upstream.forward_headers.forEach((name, i) => {
    const why = forwardHeaderProblem(name);
    if (why !== undefined) problem(`upstream.forward_headers[${i}]`, `${why}; remove it from the list`);
    else if (forwarded.has(name) || DEFAULT_FORWARD_HEADERS.includes(name)) problem(`upstream.forward_headers[${i}]`, `"${name}" is already forwarded; remove it from the list`);
    forwarded.add(name);
  });
  const dedup = config.upstream.deduplicate;
  if (dedup && config.auth.methods.includes('signature')) {
    // A retry whose nonce expired but whose record did not is still recognised; the other way
    // round, a signed retry would find neither and be delivered again.
    const nonceWindow = 2 * (config.replay ?? REPLAY_DEFAULTS).max_age;
    if (dedup.window < nonceWindow) problem('upstream.deduplicate.window', `${dedup.window / 1000} s is shorter than the nonce window (2 x replay.max_age = ${nonceWindow / 1000} s); set it to at least ${nonceWindow / 1000}s`);
  }
  return { problems, warnings: [] };
}
