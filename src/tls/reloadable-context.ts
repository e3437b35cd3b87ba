/**
 * The server's TLS material (certificate chain, key, client CA bundle, CRL), reloaded without a
 * restart: on SIGHUP, on a change in the folders of those files and every `auth.reload_interval`.
 *
 * - All or nothing: the new set passes every start-up check (`loadTlsMaterial`: PEM parses, the
 *   key matches the certificate, the certificate is in its validity period, OpenSSL accepts the
 *   set) or the set in force stays in force and the operational log says why.
 * - New handshakes use the new set (`server.setSecureContext`); established connections keep
 *   the context they were made with. The new context also has new session-ticket keys (Node
 *   makes fresh ones unless given some, and we give none), so a session resumed after a reload
 *   cannot skip the new client CA bundle or CRL (a unit test holds this).
 * - A change of the client CA bundle or the CRL (what decides who may connect) changes the
 *   trust fingerprint: the guard then re-verifies each open connection's certificate chain
 *   against the new set before its next request (guard/tls-gate.ts), so a removed CA or a
 *   revoked certificate gets no further request through a keep-alive connection.
 */
import { createHash } from 'node:crypto';
import type { Server } from 'node:tls';
import type { Config } from '../config/schema.ts';
import type { OperationalLog } from '../log/operational.ts';
import { createReloadableSource, type ReloadListener, type ReloadResult, type ReloadTrigger } from '../reload/source.ts';
import { loadTlsMaterial, type TlsMaterial } from './material.ts';

export interface ReloadableTlsContextDeps {
  readonly log: OperationalLog;
  readonly now: () => number;
  readonly onReload?: ReloadListener;
  /** Periodic reload in ms (`auth.reload_interval`); 0 turns the timer off. */
  readonly intervalMs: number;
  /** Whether to watch the files' folders (default true). */
  readonly watch?: boolean;
}

export interface ReloadableTlsContext {
  /** The material in force. */
  current(): TlsMaterial;
  /**
   * From now on this context's material is the server's: installs it now, and after every
   * reload. Throws when the server refuses it (nothing is changed then).
   */
  serve(server: Server): void;
  /** Reloads now (e.g. SIGHUP); keeps the material in force when the new set is refused. Never throws. */
  reload(trigger: ReloadTrigger): ReloadResult;
  /** A fingerprint of what decides who may connect (client CA bundle and CRL). */
  trustFingerprint(): string;
  /** Stops watching and the timer. */
  close(): void;
}

interface TlsSet {
  readonly material: TlsMaterial;
  readonly trust: string;
}

const sha256 = (...parts: Array<unknown>) => {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(`${typeof part === 'string' ? part : String(part ?? '')}\0`);
  return hash.digest('hex');
};

/**
 * Loads the set once (throwing a ConfigError when it is unusable: start-up fails with it, or a
 * config reload that names new files is refused) and keeps it current.
 */
export function createReloadableTlsContext(tls: Config['tls'], deps: ReloadableTlsContextDeps): ReloadableTlsContext {
  let server: Server | undefined;
  const load = () => {
    const material = loadTlsMaterial(tls, deps.now());
    const o = material.secureContext;
    const trust = material.clientTrust.fingerprint;
    return { value: { material, trust }, fingerprint: sha256(o.cert, o.key, trust, o.minVersion) };
  };
  const source = createReloadableSource<TlsSet>({
    name: 'tls',
    load,
    paths: [tls.cert_file, tls.key_file, tls.client_ca_file, ...(tls.crl_file !== undefined ? [tls.crl_file] : [])],
    apply: (next) => server?.setSecureContext(next.material.secureContext),
    onSwap: (next) => {
      deps.log.info({ source: 'tls', certificate_sha256: fingerprintOf(next.material), not_after: next.material.serverCertificate.validTo }, 'new TLS handshakes use the reloaded certificate and trust');
    },
    log: deps.log,
    intervalMs: deps.intervalMs,
    ...(deps.onReload ? { onReload: deps.onReload } : {}),
    ...(deps.watch !== undefined ? { watch: deps.watch } : {}),
  });

  return {
    current: () => source.current().material,
    serve(target) {
      target.setSecureContext(source.current().material.secureContext);
      server = target;
    },
    reload: (trigger) => source.reload(trigger),
    trustFingerprint: () => source.current().trust,
    close: () => source.close(),
  };
}

/** The server certificate's SHA-256 fingerprint as lowercase hex, for the log. */
function fingerprintOf(material: TlsMaterial): string {
  return material.serverCertificate.fingerprint256.replace(/:/g, '').toLowerCase();
}
