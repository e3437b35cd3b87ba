/**
 * Prometheus metrics (prom-client, in a registry of our own, never the global one), served at
 * `/metrics` on the admin listener. Request metrics are derived from the audit event itself
 * (`observe`), called at the one place the event is written, so the two can never disagree.
 *
 * Label values are bounded: `pop` is a configured peer id or "unknown", `reason` a code of the
 * REASONS table, `outcome` success|failure. No client-supplied text ever becomes a label.
 */
import type { X509Certificate } from 'node:crypto';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { registerProcessMetrics } from './process.ts';
import type { AuditEvent } from '../audit/event.ts';
import type { Config } from '../config/schema.ts';
import { StoreUnavailableError, type NonceStore } from '../store/store.ts';

/** A certificate the guard is using now, and the config key it came from. */
export interface CertificateInUse {
  /** The config key, e.g. `tls.cert_file` or `tls.client_ca_file`. */
  readonly source: string;
  readonly certificate: X509Certificate;
}

/** The CRLs in force for one issuing CA (tls/crl.ts): its subject and SHA-256 and the newest nextUpdate. */
export interface CrlInUse {
  readonly issuer: string;
  readonly sha256: string;
  /** Epoch milliseconds; undefined: no CRL of this issuer says (no series). */
  readonly nextUpdateMs: number | undefined;
}

/** A bearer secret in force with a not_after (auth/bearer.ts): its POP and its slot in token_files. */
export interface ExpiringSecret {
  readonly pop: string;
  readonly slot: number;
  /** Epoch milliseconds; undefined: the secret does not expire (no series). */
  readonly notAfter: number | undefined;
}

export interface Metrics {
  /** Counts one audit event: requests by outcome, reason and POP, durations, TLS refusals. */
  observe(event: AuditEvent): void;
  /** The certificates in force, read on every scrape (so a reload is reflected at once). */
  trackCertificates(list: () => readonly CertificateInUse[]): void;
  /** The CRLs in force, read on every scrape (so a reload is reflected at once). */
  trackCrls(list: () => readonly CrlInUse[]): void;
  /** The bearer secrets in force, read on every scrape (so a reload is reflected at once). */
  trackBearerSecrets(list: () => readonly ExpiringSecret[]): void;
  /** A reload of credential material (SIGHUP, file change, interval) and how it went. */
  countReload(result: 'success' | 'failure'): void;
  /** The control plane's registry in force, read on every scrape (none without control_plane). */
  trackRegistry(current: () => { serial: number; expiresMs: number } | undefined): void;
  /** How many peers come from the registry now, read on every scrape (with control_plane.peers merge or replace). */
  trackRegistryPeers(count: () => number): void;
  /** An audit destination failed to write or reopen. */
  countAuditError(destination: 'stdout' | 'file'): void;
  /**
   * A gauge read on every scrape, for state another module owns (e.g. `replguard_bans_active`
   * from the ban list). A collector that throws reports NaN rather than failing the scrape.
   */
  registerGaugeCollector(name: string, help: string, collect: () => number | Promise<number>): void;
  /** Wraps the nonce store: counts its refusals by cause and reports its size on every scrape. */
  instrumentNonceStore(store: NonceStore): NonceStore;
  /** The Prometheus text exposition. */
  render(): Promise<{ contentType: string; body: string }>;
}

/** Seconds; from 1 ms (a refusal) to the longest upstream timeout worth distinguishing. */
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export function createMetrics(config: Pick<Config, 'peers'> & Partial<Pick<Config, 'replay'>>, now: () => number = Date.now): Metrics {
  const registry = new Registry();
  registerProcessMetrics(registry, 'backup');
  const registers = [registry];
  const peerIds = new Set(config.peers.map((p) => p.id));
  const popLabel = (pop: string | undefined) => (pop !== undefined && peerIds.has(pop) ? pop : 'unknown');

  const requests = new Counter({
    name: 'replguard_requests_total',
    help: 'HTTP requests by outcome, reason code (docs/reasons.md) and authenticated POP ("unknown" before authentication).',
    labelNames: ['outcome', 'reason', 'pop'] as const,
    registers,
  });
  const requestDuration = new Histogram({
    name: 'replguard_request_duration_seconds',
    help: 'Time from the request’s arrival to the end of its response, by outcome.',
    labelNames: ['outcome'] as const,
    buckets: DURATION_BUCKETS,
    registers,
  });
  const upstreamDuration = new Histogram({
    name: 'replguard_upstream_duration_seconds',
    help: 'Time from forwarding a request to the upstream’s response headers.',
    buckets: DURATION_BUCKETS,
    registers,
  });
  const tlsRefusals = new Counter({
    name: 'replguard_tls_refusals_total',
    help: 'Connections refused at the TLS layer, before any HTTP request, by reason code.',
    labelNames: ['reason'] as const,
    registers,
  });
  const reloads = new Counter({
    name: 'replguard_reloads_total',
    help: 'Reloads of credential material by result; on failure the previous material stays in force.',
    labelNames: ['result'] as const,
    registers,
  });
  for (const result of ['success', 'failure'] as const) reloads.inc({ result }, 0);
  const auditErrors = new Counter({
    name: 'replguard_audit_write_errors_total',
    help: 'Audit destinations that failed to write or reopen.',
    labelNames: ['destination'] as const,
    registers,
  });
  for (const destination of ['stdout', 'file'] as const) auditErrors.inc({ destination }, 0);

  // The signed POP registry (docs/control-plane.md): every REGISTRY_* event counted, and the
  // registry in force read on every scrape. Bounded: 7 event codes x the refusal codes (or none).
  const registryEvents = new Counter({
    name: 'replguard_registry_events_total',
    help: 'Events of the control plane\'s registry by reason code (REGISTRY_UPDATED, REGISTRY_REFUSED, ...) and, for a refusal, its refusal code ("none" otherwise).',
    labelNames: ['reason', 'refusal'] as const,
    registers,
  });
  // Peers from the registry (control_plane.peers): each POP added, removed or changed by a
  // REGISTRY_PEERS_CHANGED event (the start-up peer set counts as added). Bounded: 3 labels.
  const registryPeerChanges = new Counter({
    name: 'replguard_registry_peer_changes_total',
    help: 'Peers the control plane\'s registry added, removed or changed on this guard (control_plane.peers), by change.',
    labelNames: ['change'] as const,
    registers,
  });
  // Batch numbers (replay.sequence): every SEQUENCE_* finding per POP, and the batch numbers
  // reported missing. Bounded: 4 codes x the configured peers (others count as "unknown").
  const sequenceEvents = new Counter({
    name: 'replguard_sequence_events_total',
    help: 'Batch-number findings by reason code (SEQUENCE_NEW_EPOCH, SEQUENCE_GAP, SEQUENCE_DUPLICATE, SEQUENCE_BELOW_LOWEST) and POP.',
    labelNames: ['reason', 'pop'] as const,
    registers,
  });
  const sequenceMissing = new Counter({
    name: 'replguard_sequence_missing_batches_total',
    help: 'Batch numbers reported missing (SEQUENCE_GAP: not forwarded within replay.sequence.gap_window after a higher one), by POP.',
    labelNames: ['pop'] as const,
    registers,
  });
  if (config.replay?.sequence !== undefined) for (const pop of peerIds) sequenceMissing.inc({ pop }, 0);
  let registryPeers: () => number | undefined = () => undefined;
  new Gauge({
    name: 'replguard_registry_peers',
    help: 'Peers admitted from the control plane\'s registry now (absent unless control_plane.peers is merge or replace).',
    registers,
    collect() {
      this.reset();
      const count = registryPeers();
      if (count !== undefined) this.set(count);
    },
  });
  let registryInForce: () => { serial: number; expiresMs: number } | undefined = () => undefined;
  new Gauge({
    name: 'replguard_registry_serial',
    help: 'Serial of the registry in force (absent without control_plane).',
    registers,
    collect() {
      this.reset();
      const current = registryInForce();
      if (current) this.set(current.serial);
    },
  });
  new Gauge({
    name: 'replguard_registry_expiry_seconds',
    help: 'Seconds until the registry in force expires (negative once expired; absent without control_plane).',
    registers,
    collect() {
      this.reset();
      const current = registryInForce();
      if (current) this.set(secondsUntil(current.expiresMs));
    },
  });

  let certificates: () => readonly CertificateInUse[] = () => [];
  new Gauge({
    name: 'replguard_certificate_expiry_seconds',
    help: 'Seconds until each certificate the guard uses expires (negative once expired), by config key, subject and SHA-256.',
    labelNames: ['source', 'subject', 'sha256'] as const,
    registers,
    collect() {
      this.reset();
      for (const { source, certificate } of certificates()) {
        this.set(
          { source, subject: certificate.subject.replace(/\n/g, ', '), sha256: certificate.fingerprint256.replace(/:/g, '').toLowerCase() },
          secondsUntil(Date.parse(certificate.validTo)),
        );
      }
    },
  });
  new Gauge({
    name: 'replguard_certificate_expiry_timestamp_seconds',
    help: 'notAfter (Unix seconds) of each certificate the guard uses, by config key, subject and SHA-256 (cert-manager\'s convention).',
    labelNames: ['source', 'subject', 'sha256'] as const,
    registers,
    collect() {
      this.reset();
      for (const { source, certificate } of certificates()) {
        this.set(
          { source, subject: certificate.subject.replace(/\n/g, ', '), sha256: certificate.fingerprint256.replace(/:/g, '').toLowerCase() },
          Math.floor(Date.parse(certificate.validTo) / 1000),
        );
      }
    },
  });
  let crls: () => readonly CrlInUse[] = () => [];
  new Gauge({
    name: 'replguard_crl_expiry_timestamp_seconds',
    help: 'nextUpdate (Unix seconds) of the newest CRL in force for each issuing CA, by issuer subject and SHA-256: past it, every client of that CA is refused.',
    labelNames: ['issuer', 'sha256'] as const,
    registers,
    collect() {
      this.reset();
      for (const { issuer, sha256, nextUpdateMs } of crls()) {
        if (nextUpdateMs !== undefined) this.set({ issuer, sha256 }, Math.floor(nextUpdateMs / 1000));
      }
    },
  });
  let bearerSecrets: () => readonly ExpiringSecret[] = () => [];
  new Gauge({
    name: 'replguard_bearer_secret_expiry_timestamp_seconds',
    help: 'not_after (Unix seconds) of each bearer secret in force that has one, by POP and its index in token_files.',
    labelNames: ['pop', 'slot'] as const,
    registers,
    collect() {
      this.reset();
      for (const { pop, slot, notAfter } of bearerSecrets()) {
        if (notAfter !== undefined) this.set({ pop, slot: String(slot) }, Math.floor(notAfter / 1000));
      }
    },
  });
  const peerNotAfter = new Map<string, number>();
  new Gauge({
    name: 'replguard_peer_certificate_expiry_seconds',
    help: 'Seconds until the client certificate each POP last authenticated with expires.',
    labelNames: ['pop'] as const,
    registers,
    collect() {
      this.reset();
      for (const [pop, notAfter] of peerNotAfter) this.set({ pop }, secondsUntil(notAfter));
    },
  });

  // prom-client hashes a label set on every inc/observe; the labelled children are kept instead
  // (bounded: outcomes x reason codes x configured POPs plus "unknown").
  const counterChildren = new Map<string, ReturnType<typeof requests.labels>>();
  function requestCounter(outcome: string, reason: string, pop: string) {
    const key = `${outcome}\u0000${reason}\u0000${pop}`;
    let child = counterChildren.get(key);
    if (!child) {
      child = requests.labels({ outcome, reason, pop });
      counterChildren.set(key, child);
    }
    return child;
  }
  const durationChildren = new Map<string, ReturnType<typeof requestDuration.labels>>();
  function durationHistogram(outcome: string) {
    let child = durationChildren.get(outcome);
    if (!child) {
      child = requestDuration.labels({ outcome });
      durationChildren.set(outcome, child);
    }
    return child;
  }

  function secondsUntil(ms: number): number {
    return Math.floor((ms - now()) / 1000);
  }

  function registerGaugeCollector(name: string, help: string, collect: () => number | Promise<number>): void {
    new Gauge({
      name,
      help,
      registers,
      async collect() {
        let value: number;
        try {
          value = await collect();
        } catch {
          value = Number.NaN;
        }
        this.set(value);
      },
    });
  }

  return {
    observe(event) {
      const { outcome, reason, action, duration } = event.event;
      if (action === 'tls-connection') {
        tlsRefusals.inc({ reason });
        return;
      }
      if (action === 'registry') {
        registryEvents.inc({ reason, refusal: event.replguard?.registry?.refusal ?? 'none' });
        if (reason === 'REGISTRY_PEERS_CHANGED') {
          for (const change of ['added', 'removed', 'changed'] as const) registryPeerChanges.inc({ change }, event.replguard?.registry?.[change]?.length ?? 0);
        }
        return;
      }
      if (action === 'batch-sequence') {
        const pop = popLabel(event.replguard?.pop);
        sequenceEvents.inc({ reason, pop });
        const gap = event.replguard?.gap;
        if (gap !== undefined) sequenceMissing.inc({ pop }, gap.count);
        return;
      }
      if (action !== 'replication-request') return;
      const pop = popLabel(event.replguard?.pop);
      requestCounter(outcome, reason, pop).inc();
      if (duration !== undefined) durationHistogram(outcome).observe(duration / 1e9);
      const upstream = event.replguard?.upstream_duration;
      if (upstream !== undefined) upstreamDuration.observe(upstream / 1e9);
      const notAfter = event.tls?.client?.not_after;
      if (pop !== 'unknown' && notAfter !== undefined) peerNotAfter.set(pop, Date.parse(notAfter));
    },
    trackCertificates(list) {
      certificates = list;
    },
    trackCrls(list) {
      crls = list;
    },
    trackBearerSecrets(list) {
      bearerSecrets = list;
    },
    trackRegistry(current) {
      registryInForce = current;
    },
    trackRegistryPeers(count) {
      registryPeers = count;
    },
    countReload(result) {
      reloads.inc({ result });
    },
    countAuditError(destination) {
      auditErrors.inc({ destination });
    },
    registerGaugeCollector,
    instrumentNonceStore(store) {
      const refusals = new Counter({
        name: 'replguard_nonce_refusals_total',
        help: 'Nonces the store refused, by cause: replayed (seen within the window), full (bounded store, nothing evicted), unavailable (backend down).',
        labelNames: ['cause'] as const,
        registers,
      });
      for (const cause of ['replayed', 'full', 'unavailable'] as const) refusals.inc({ cause }, 0);
      registerGaugeCollector('replguard_nonce_store_size', 'Live nonces held by the nonce store.', () => store.nonceCount());
      return {
        async recordNonce(key, ttlMs) {
          try {
            const result = await store.recordNonce(key, ttlMs);
            if (result !== 'recorded') refusals.inc({ cause: result });
            return result;
          } catch (err) {
            if (err instanceof StoreUnavailableError) refusals.inc({ cause: 'unavailable' });
            throw err;
          }
        },
        nonceCount: () => store.nonceCount(),
        close: () => store.close(),
      };
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
