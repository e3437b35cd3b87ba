/**
 * The guard (role: backup). Wires the TLS listener, its TLS gate (guard/tls-gate.ts: what is
 * decided before the first HTTP byte), the pipeline (guard/pipeline.ts) and the admin listener; it
 * decides nothing itself. What happens to each request (one context, the stages, one response,
 * exactly one audit event) is guard/requests.ts.
 */
import type { Server as HttpServer } from 'node:http';
import { createServer, type Server } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AuditLog } from '../audit/audit-log.ts';
import { registryEvent, reloadEvent, sequenceEvent } from '../audit/control-events.ts';
import type { AuditEvent } from '../audit/event.ts';
import type { Config } from '../config/schema.ts';
import { Bans } from '../limits/bans.ts';
import type { OperationalLog } from '../log/operational.ts';
import { createMetrics, type Metrics } from '../metrics/metrics.ts';
import { createRepeatAggregator } from '../audit/repeats.ts';
import { createSequenceTracker } from '../replay/sequence-stage.ts';
import { createSharedState, loadRedisDriver } from '../store/create.ts';
import type { LoadedConfig } from '../config/load.ts';
import { createReloadableSource, type ReloadableSource, type ReloadListener, type ReloadTrigger } from '../reload/source.ts';
import type { Registry } from '../registry/document.ts';
import { startRegistryMonitor, type RegistryMonitor } from '../registry/monitor.ts';
import type { PeerSet } from '../registry/peers.ts';
import { loadAdminToken, type AdminToken } from '../service/admin-access.ts';
import { startAdminServer } from '../service/admin.ts';
import { drainServer } from '../service/drain.ts';
import { listenerOptions, listenOrExplain } from '../service/listen.ts';
import { createLiveGuard, type LiveGuard } from './reload.ts';
import { attachRequestHandling } from './requests.ts';
import { attachTlsGate } from './tls-gate.ts';

export interface GuardDeps {
  readonly audit: AuditLog;
  readonly log: OperationalLog;
  /** Created from the config when not given. */
  readonly metrics?: Metrics;
  readonly now?: () => number;
  /** Where the config came from: when given, SIGHUP and a change of the file reload it. */
  readonly source?: LoadedConfig;
  /** Told the result of every reload attempt (config, tls, each credential source): metrics. */
  readonly onReload?: ReloadListener;
}

export interface Guard {
  /** The bound TLS port (useful with port 0). */
  readonly port: number;
  readonly adminPort: number;
  ready(): boolean;
  /** Re-reads the config file, the TLS material and the credential files (guard/reload.ts); never throws. */
  reload(trigger: ReloadTrigger): void;
  /** Stops accepting, lets in-flight requests finish up to `shutdown_timeout`, then closes. */
  shutdown(): Promise<void>;
}

/** Most bans read per scrape for `replguard_bans_active`. */
const BANS_ACTIVE_SCAN = 10_000;

export async function startGuard(config: Readonly<Config>, deps: GuardDeps): Promise<Guard> {
  const { audit, log } = deps;
  const now = deps.now ?? Date.now;
  const metrics = deps.metrics ?? createMetrics(config, now);
  /** The one place events are written: the audit trail and the metrics derived from it. */
  const record = (event: AuditEvent) => {
    audit.write(event);
    metrics.observe(event);
  };

  // The control plane's registry confirms this guard's role before anything listens: a refused
  // or mismatching registry is a ConfigError (exit 2). Made once per process (restart-only).
  // Each new registry also goes to the peers (control_plane.peers), once the pipeline exists.
  let onRegistry: ((registry: Registry) => void) | undefined;
  const registry: RegistryMonitor | undefined = config.control_plane
    ? await startRegistryMonitor(config.control_plane, { popId: config.pop_id, role: 'backup' }, { now, log, record, onRegistry: (r) => onRegistry?.(r) })
    : undefined;
  const serving = () => registry?.state().serving ?? true;

  // Nonces, rate counters and bans: in memory, or in Redis shared with other replicas. Made once
  // per process: a config reload builds a new pipeline over the same state.
  const state = createSharedState(config, { now, log, ...(config.store.type === 'redis' ? { redis: await loadRedisDriver() } : {}) });
  // The peer index comes from the config in force at each call (a reload changes it).
  let live!: LiveGuard;
  const bans = new Bans(config, state, { now, audit, log, peers: () => live.peers() });
  bans.start();
  // The nonce store counted by cause and sized on every scrape; the bans in force, read from the
  // store (shared with other replicas) on every scrape, at most BANS_ACTIVE_SCAN of them.
  const nonceStore = metrics.instrumentNonceStore(state.nonces);
  metrics.registerGaugeCollector('replguard_bans_active', 'Active bans (addresses and POPs), as the ban store holds them; at most 10000 are counted.', async () => {
    const t = now();
    return (await state.bans.list(BANS_ACTIVE_SCAN)).filter((ban) => ban.until > t).length;
  });

  // Every reload result is counted and, unless nothing changed, audited (a failure is an alert,
  // and so is a reload that took credentials out of force: CREDENTIAL_REMOVED).
  const onReload: ReloadListener = (report) => {
    if (report.outcome !== 'unchanged') {
      const result = report.outcome === 'failed' ? 'failure' : 'success';
      metrics.countReload(result);
      const removed = report.removed ?? [];
      const what = removed.length > 0 ? `: removed ${removed.map((r) => `${r.key} (${r.file})`).join(', ')}` : '';
      record(reloadEvent(result, report.trigger, `${report.source}${report.error !== undefined ? `: ${report.error}` : what}`, removed));
    }
    deps.onReload?.(report);
  };

  // Batch numbers of each signer epoch (replay.sequence): the epochs swept for gaps outlive a reload.
  const sequences = createSequenceTracker({ store: state.sequences, now, log, onFinding: (finding) => record(sequenceEvent(finding)) });

  let retryPeers: ((trigger: string) => void) | undefined;
  // Config, TLS context and pipeline in force; they change on reload (guard/reload.ts).
  try {
    live = createLiveGuard(config, {
      log, now, source: deps.source, onReload,
      shared: { nonceStore, deliveries: state.deliveries, sequences, bans, limiters: state.limiters, ...(registry ? { registry: () => registry.state() } : {}) },
      ...(registry ? { registry: () => registry.current() } : {}),
    });
  } catch (err) {
    registry?.close();
    sequences.close();
    bans.stop();
    await state.close();
    throw err;
  }
  if (registry) {
    metrics.trackRegistry(() => {
      const { serial, exp } = registry.current().payload;
      return { serial, expiresMs: exp * 1000 };
    });
  }
  const peerMode = config.control_plane?.peers ?? 'off';
  if (registry && peerMode !== 'off') {
    metrics.trackRegistryPeers(() => live.peerSet().fromRegistry.length);
    const peerFields = (set: PeerSet) => ({
      source: config.control_plane?.registry_url !== undefined ? 'url' : 'file', serial: registry.current().payload.serial, peer_mode: peerMode, peers_from_registry: set.fromRegistry.length,
      conflicts: set.conflicts.map((c) => `${c.id}: ${c.reason}`),
    });
    const signed = config.auth.methods.includes('signature');
    const warnPeers = (set: PeerSet) => {
      for (const c of set.conflicts) log.warn({ source: 'registry', pop: c.id }, `registry POP not admitted: ${c.reason}`);
      for (const p of set.peers) {
        if (signed && p.from === 'registry' && (p.signature_keys?.length ?? 0) === 0) log.warn({ source: 'registry', pop: p.id }, 'registry POP without signature_keys: auth.methods lists signature, so it can never be admitted');
      }
    };
    // The peers of the start-up registry are in force already (the pipeline was built with them).
    const initial = live.peerSet();
    record(registryEvent('REGISTRY_PEERS_CHANGED', { ...peerFields(initial), added: [...initial.fromRegistry], removed: [], changed: [] }, 'start-up'));
    warnPeers(initial);
    const applyPeers = (trigger: string) => {
      const result = live.applyRegistry();
      if (result.outcome === 'unchanged') return;
      const { added, removed, changed } = result;
      warnPeers(result.set);
      if (result.outcome === 'failed') {
        record(registryEvent('REGISTRY_PEERS_NOT_APPLIED', { ...peerFields(result.set), added, removed, changed }, `${trigger}: ${result.error}`));
        return;
      }
      log.info({ source: 'registry', added, removed, changed }, 'new peers from the registry in force');
      record(registryEvent('REGISTRY_PEERS_CHANGED', { ...peerFields(result.set), added, removed, changed }, trigger));
    };
    onRegistry = () => applyPeers('registry');
    retryPeers = applyPeers;
  }
  metrics.trackCertificates(() => {
    const material = live.tlsMaterial();
    return [
      { source: 'tls.cert_file', certificate: material.serverCertificate },
      ...material.caCertificates.map((certificate) => ({ source: 'tls.client_ca_file', certificate })),
    ];
  });

  metrics.trackCrls(() => [...(live.tlsMaterial().crls ?? new Map()).entries()].map(([sha256, r]) => ({ issuer: r.issuer, sha256, nextUpdateMs: r.nextUpdateMs })));
  metrics.trackBearerSecrets(() => live.bearerExpiries());

  let draining = false;
  let listening = false;

  const limits = config.limits;
  const server: Server = createServer(
    {
      ...live.tlsOptions(),
      requestCert: true,
      // Chains are verified by the runtime during the handshake AND by the TLS gate after it
      // (tls/client-trust.ts), which names the precise reason before the socket closes.
      rejectUnauthorized: false,
      sessionTimeout: 300,
      // The gate's own handshake deadline (limits.handshake_timeout) cuts first; this is Node's backstop.
      handshakeTimeout: limits.handshake_timeout + 1000,
      // A missing Host is refused by the framing stage, with the security headers and an audit event.
      requireHostHeader: false,
      ...listenerOptions(limits),
    },
  );
  live.serve(server);

  // Connection-level refusals (accept, TLS): aggregated per client and reason in the audit
  // trail, each one counted in the metrics.
  const repeats = createRepeatAggregator(config.audit.repeat_window, now, {
    count: (event) => metrics.observe(event),
    write: (event) => audit.write(event),
  });
  const gate = attachTlsGate(server, { now, config: () => live.config(), trust: () => live.clientTrust(), bans, repeats });

  const requests = attachRequestHandling(server, { gate, live: () => live, bans, log, record, draining: () => draining });
  metrics.registerGaugeCollector('replguard_connections_open', 'TLS connections open now (admitted by the TLS gate or in their handshake).', () => gate.counts().open);
  metrics.registerGaugeCollector('replguard_connections_unauthenticated', 'Open connections none of whose requests has verified a credential yet.', () => gate.counts().unauthenticated);
  metrics.registerGaugeCollector('replguard_requests_in_flight', 'Requests whose audit event is not written yet (being checked, forwarded or answered).', () => requests.unrecorded());

  try {
    await listenOrExplain(server, config.listen.host, config.listen.port, 'listen');
  } catch (err) {
    live.close();
    registry?.close();
    throw err;
  }
  listening = true;
  const port = (server.address() as { port: number }).port;

  // The admin token (admin.token_file): made once, like the admin listener (`admin` is restart-only),
  // and reloaded with the other credential files (SIGHUP, a change in its folder, the interval).
  let adminToken: ReloadableSource<AdminToken> | undefined;
  let admin: HttpServer;
  try {
    const tokenFile = config.admin.token_file;
    if (tokenFile !== undefined) {
      adminToken = createReloadableSource({
        name: 'admin token',
        load: () => loadAdminToken(tokenFile),
        paths: [tokenFile],
        onSwap: (next) => log.info({ source: 'admin token', token_fingerprint: next.fingerprint }, 'ban administration: new admin token in force'),
        log,
        onReload,
        intervalMs: config.auth.reload_interval,
      });
    }
    admin = await startAdminServer(config.admin.host, config.admin.port, {
      ready: () => listening && !draining && state.ready() && serving(),
      metrics: () => metrics.render(),
      bans,
      adminToken: () => adminToken?.current(),
      audit,
    }, log);
  } catch (err) {
    adminToken?.close();
    server.close();
    live.close();
    registry?.close();
    sequences.close();
    bans.stop();
    await state.close();
    throw err;
  }
  const adminPort = (admin.address() as { port: number }).port;
  log.info({
    listen: `${config.listen.host}:${port}`, admin: `${config.admin.host}:${adminPort}`, peers: live.peerSet().peers.length,
    ban_administration: adminToken ? `admin token ${adminToken.current().fingerprint}, from any caller` : 'loopback callers only',
  }, 'guard listening');

  let shutdownPromise: Promise<void> | undefined;
  return {
    port,
    adminPort,
    ready: () => listening && !draining && state.ready() && serving(),
    reload: (trigger) => {
      live.reload(trigger);
      adminToken?.reload(trigger);
      // A peer set that failed to build is tried again (its files may be fixed now).
      retryPeers?.(trigger);
      void registry?.refresh(trigger);
    },
    shutdown() {
      shutdownPromise ??= (async () => {
        draining = true;
        const timeout = live.config().shutdown_timeout;
        log.info({ timeout_ms: timeout }, 'draining: no new connections, finishing in-flight requests');
        await drainServer(server, timeout, log);
        listening = false;
        // Connections cut at the deadline report their requests' outcomes on the next ticks; a
        // request still waiting for the upstream then is written as it stands.
        for (let waited = 0; requests.unrecorded() > 0 && waited < 1000; waited += 10) await sleep(10);
        requests.recordAll();
        live.close();
        registry?.close();
        adminToken?.close();
        gate.close();
        repeats.flush();
        repeats.close();
        sequences.close();
        bans.stop();
        await state.close();
        await new Promise<void>((resolve) => admin.close(() => resolve()));
        audit.flush();
        log.info('guard stopped');
      })();
      return shutdownPromise;
    },
  };
}
