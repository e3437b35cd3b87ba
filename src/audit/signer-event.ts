/**
 * The signer's audit event (role: primary): one per attempt to reach the backup's guard, and one
 * for a request of the primary refused before any attempt (attempt 0). Same ECS style as the
 * guard's events (audit/event.ts): `event.action` is `replication-send`; `source` is the primary's
 * client, `destination` the guard, `http` the request sent to the guard and its answer, and
 * `tls.server` the certificate the guard presented. Nothing client-supplied is logged beyond the
 * path (cut before anything credential-shaped, then clipped: see audit/event.ts `Fields`); never
 * a credential, only its fingerprint.
 */
import { REASONS, type Reason } from '../pipeline/reasons.ts';
import { clip, ECS_VERSION, Fields, sourceFields } from './event.ts';

export interface SignerAuditEvent {
  ecs: { version: string };
  event: {
    kind: 'event' | 'alert';
    category: string[];
    type: string[];
    action: 'replication-send';
    outcome: 'success' | 'failure';
    reason: Reason;
    module: 'replguard';
    dataset: 'replguard.audit';
    /** Nanoseconds, per ECS: this attempt (or the local refusal). */
    duration: number;
  };
  /** The primary's client; `port` absent when not known. */
  source?: { ip: string; port?: number };
  destination?: { address: string; port: number };
  tls?: { version?: string; version_protocol?: string; server?: { subject?: string; hash?: { sha256?: string } } };
  http?: { request: { method: string; body: { bytes: number } }; response?: { status_code: number } };
  /** Absent when the request had no path the signer could log. */
  url?: { path: string };
  replguard: {
    /** The signer's id for the primary's request (the same in every attempt's event). */
    request_id: string;
    /** This POP (the source). */
    pop: string;
    /** The backup POP (backup.id). */
    backup: string;
    /** 1 for the first attempt; 0 when the request was refused before any attempt. */
    attempt: number;
    /** 1 + retry.max_retries. */
    max_attempts: number;
    /** True on the request's last event: `status` is what the primary got. */
    final: boolean;
    /** The status sent to the primary (final events only; absent when nobody was listening any more). */
    status?: number;
    /** The wait before the next attempt, in ms (non-final events). */
    retry_in_ms?: number;
    webhook_id?: string;
    /** The signer's epoch (new at each start) and the batch's number in it: retries keep both. */
    epoch?: string;
    sequence?: number;
    jti?: string;
    /** First 12 hex digits of the SHA-256 of the bearer secret or JWT attached (never the credential). */
    token_fingerprint?: string;
    entries?: number;
    /** The guard's x-replguard-request-id, to find its side of the story. */
    backup_request_id?: string;
    detail?: string;
    /** The fields cut at something credential-shaped (as in the guard's events). */
    redacted?: string[];
  };
}

export interface SignerEventInput {
  readonly reason: Reason;
  readonly durationMs: number;
  readonly client: { readonly ip: string; readonly port: number };
  readonly path: string | undefined;
  readonly requestId: string;
  readonly pop: string;
  readonly backup: { readonly id: string; readonly address: string; readonly port: number };
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly final: boolean;
  /** The status sent to the primary; 0 (or absent) when it had gone and got none. */
  readonly status?: number;
  readonly retryInMs?: number;
  readonly sentBytes?: number;
  readonly backupStatus?: number;
  readonly tls?: { readonly version?: string; readonly server?: { readonly subject: string; readonly sha256: string } };
  readonly webhookId?: string;
  readonly batch?: { readonly epoch: string; readonly sequence: number };
  readonly jti?: string;
  readonly tokenFingerprint?: string;
  readonly entries?: number;
  readonly backupRequestId?: string;
  readonly detail?: string;
}

/**
 * The attempts that got no answer from the guard (nothing listening, no answer in time): an
 * ECS `error`, not a `denied`, which is what the guard (or the signer's own TLS checks) said.
 */
const NO_ANSWER: ReadonlySet<Reason> = new Set(['SIGNER_BACKUP_UNREACHABLE', 'SIGNER_BACKUP_TIMEOUT']);

export function signerEvent(e: SignerEventInput): SignerAuditEvent {
  const success = e.reason === 'SIGNER_DELIVERED';
  const fields = new Fields();
  const version = e.tls?.version?.startsWith('TLSv') ? e.tls.version.slice(4) : e.tls?.version;
  const path = fields.client('url.path', e.path);
  const source = sourceFields(e.client.ip, e.client.port);
  const tls = e.tls && (version !== undefined || e.tls.server)
    ? {
      ...(version !== undefined ? { version, version_protocol: 'tls' } : {}),
      ...(e.tls.server ? { server: { ...(e.tls.server.subject ? { subject: clip(e.tls.server.subject) } : {}), hash: { sha256: e.tls.server.sha256 } } } : {}),
    }
    : undefined;
  const event: SignerAuditEvent = {
    ecs: { version: ECS_VERSION },
    event: {
      kind: REASONS[e.reason].alert ? 'alert' : 'event',
      category: ['network', 'web'],
      type: success ? ['connection', 'allowed'] : ['connection', NO_ANSWER.has(e.reason) ? 'error' : 'denied'],
      action: 'replication-send',
      outcome: success ? 'success' : 'failure',
      reason: e.reason,
      module: 'replguard',
      dataset: 'replguard.audit',
      duration: Math.round(e.durationMs * 1e6),
    },
    ...(source ? { source } : {}),
    ...(e.attempt > 0 ? { destination: { address: e.backup.address, port: e.backup.port } } : {}),
    ...(tls ? { tls } : {}),
    ...(e.sentBytes !== undefined
      ? { http: { request: { method: 'POST', body: { bytes: e.sentBytes } }, ...(e.backupStatus !== undefined ? { response: { status_code: e.backupStatus } } : {}) } }
      : {}),
    ...(path ? { url: { path } } : {}),
    replguard: {
      request_id: e.requestId,
      pop: e.pop,
      backup: e.backup.id,
      attempt: e.attempt,
      max_attempts: e.maxAttempts,
      final: e.final,
      ...(e.status !== undefined && e.status > 0 ? { status: e.status } : {}),
      ...(e.retryInMs !== undefined ? { retry_in_ms: e.retryInMs } : {}),
      ...(e.webhookId ? { webhook_id: e.webhookId } : {}),
      ...(e.batch !== undefined ? { epoch: e.batch.epoch, sequence: e.batch.sequence } : {}),
      ...(e.jti ? { jti: e.jti } : {}),
      ...(e.tokenFingerprint ? { token_fingerprint: e.tokenFingerprint } : {}),
      ...(e.entries !== undefined ? { entries: e.entries } : {}),
      ...(e.backupRequestId ? { backup_request_id: clip(e.backupRequestId) } : {}),
      ...(e.detail ? { detail: fields.client('replguard.detail', e.detail) } : {}),
    },
  };
  fields.mark(event.replguard);
  return event;
}
