/**
 * The signer's Prometheus metrics (prom-client, a registry of its own), served at `/metrics` on
 * its admin listener. Attempts and retries are derived from the audit event itself (`observe`),
 * called where the event is written, so the two can never disagree.
 *
 * Label values are bounded: `outcome` success|failure, `reason` a code of the REASONS table.
 */
import type { Socket } from 'node:net';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { SignerAuditEvent } from '../audit/signer-event.ts';
import { registerProcessMetrics } from './process.ts';

export interface SignerMetrics {
  /** Counts one signer audit event: an attempt (attempt > 0) by outcome and reason, a retry, a delivery's end (final, attempt > 0). */
  observe(event: SignerAuditEvent): void;
  /** A request of the primary was taken in; the returned function marks it answered (once). */
  requestStarted(): (heldSeconds: number) => void;
  /** The certificate the backup's guard presented on the latest attempt that got that far. */
  guardCertificate(cert: CertificateFacts): void;
  /**
   * Where this POP's own client certificate in force is read on each scrape (the signer's
   * material, so a reload shows on the next scrape); undefined: none configured.
   */
  readClientCertificate(read: () => CertificateFacts | undefined): void;
  /**
   * A socket an attempt is sent on, new or reused from the keep-alive pool: counted once, as an
   * open connection to the guard, until it closes.
   */
  guardConnection(socket: Socket): void;
  render(): Promise<{ contentType: string; body: string }>;
}

/** A certificate as the expiry gauges label it. */
export interface CertificateFacts {
  readonly subject: string;
  readonly sha256: string;
  /** notAfter, epoch ms. */
  readonly notAfterMs: number;
}

/** Seconds; from an immediate answer to the longest hold the retry table allows (docs/signer.md). */
const HOLD_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 150, 300, 900];

export function createSignerMetrics(): SignerMetrics {
  const registry = new Registry();
  registerProcessMetrics(registry, 'primary');
  const registers = [registry];
  const attempts = new Counter({
    name: 'replguard_signer_attempts_total',
    help: 'Delivery attempts to the backup\'s guard by outcome and reason code (docs/reasons.md).',
    labelNames: ['outcome', 'reason'] as const,
    registers,
  });
  const deliveries = new Counter({
    name: 'replguard_signer_deliveries_total',
    help: 'Requests of the primary that reached an attempt, by how they finally ended (outcome and reason code): what the primary got.',
    labelNames: ['outcome', 'reason'] as const,
    registers,
  });
  const retries = new Counter({
    name: 'replguard_signer_retries_total',
    help: 'Attempts that failed and were followed by a retry.',
    registers,
  });
  const held = new Histogram({
    name: 'replguard_signer_request_hold_seconds',
    help: 'Time a request of the primary was held, from its arrival to the signer\'s answer, retries included.',
    buckets: HOLD_BUCKETS,
    registers,
  });
  const inFlight = new Gauge({
    name: 'replguard_signer_requests_in_flight',
    help: 'Requests of the primary the signer is holding now.',
    registers,
  });
  const guardExpiry = new Gauge({
    name: 'replguard_signer_guard_certificate_expiry_timestamp_seconds',
    help: 'notAfter (Unix seconds) of the certificate the backup\'s guard presented on the latest attempt, by subject and SHA-256.',
    labelNames: ['subject', 'sha256'] as const,
    registers,
  });
  let readClient: () => CertificateFacts | undefined = () => undefined;
  new Gauge({
    name: 'replguard_signer_client_certificate_expiry_timestamp_seconds',
    help: 'notAfter (Unix seconds) of this POP\'s client certificate in force (client_tls.cert_file), by subject and SHA-256.',
    labelNames: ['subject', 'sha256'] as const,
    registers,
    collect() {
      this.reset();
      const cert = readClient();
      if (cert && Number.isFinite(cert.notAfterMs)) this.set({ subject: cert.subject, sha256: cert.sha256 }, Math.floor(cert.notAfterMs / 1000));
    },
  });
  const guardConnections = new Gauge({
    name: 'replguard_signer_guard_connections_open',
    help: 'TLS connections to the backup\'s guard open now (in use or idle in the keep-alive pool).',
    registers,
  });
  const counted = new WeakSet<Socket>();
  let guardSha = '';
  retries.inc(0);
  inFlight.set(0);
  guardConnections.set(0);
  return {
    observe(event) {
      if (event.replguard.attempt > 0) attempts.inc({ outcome: event.event.outcome, reason: event.event.reason });
      if (!event.replguard.final) retries.inc();
      else if (event.replguard.attempt > 0) deliveries.inc({ outcome: event.event.outcome, reason: event.event.reason });
    },
    requestStarted() {
      inFlight.inc();
      let done = false;
      return (heldSeconds) => {
        if (done) return;
        done = true;
        inFlight.dec();
        held.observe(heldSeconds);
      };
    },
    guardCertificate(cert) {
      if (cert.sha256 === guardSha || Number.isNaN(cert.notAfterMs)) return;
      guardSha = cert.sha256;
      guardExpiry.reset();
      guardExpiry.set({ subject: cert.subject, sha256: cert.sha256 }, Math.floor(cert.notAfterMs / 1000));
    },
    readClientCertificate(read) {
      readClient = read;
    },
    guardConnection(socket) {
      if (counted.has(socket) || socket.destroyed) return;
      counted.add(socket);
      guardConnections.inc();
      socket.once('close', () => guardConnections.dec());
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
