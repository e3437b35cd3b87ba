/**
 * The audit event: one per request (and one per connection refused at the TLS layer), with
 * Elastic Common Schema field names so a SIEM ingests it without mapping. Every client-supplied
 * string is a structured field, truncated to a documented length; JSON encoding escapes
 * newlines, ANSI escapes and quotes, so no value can forge a line or a field.
 */
import type { ConnectionInfo, RequestContext } from '../pipeline/context.ts';
import { REASONS, type Reason } from '../pipeline/reasons.ts';

/** Longest client-supplied string kept in an event (characters); longer ones are cut. */
export const MAX_CLIENT_STRING = 256;

export function clip(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  return value.length > MAX_CLIENT_STRING ? `${value.slice(0, MAX_CLIENT_STRING)}…` : value;
}

export interface AuditEvent {
  event: {
    kind: 'event' | 'alert';
    category: string[];
    type: string[];
    action: string;
    outcome: 'success' | 'failure';
    reason: Reason;
    /** Nanoseconds, per ECS. */
    duration?: number;
  };
  source: { ip: string; port: number };
  tls?: { version?: string; version_protocol?: string; client?: { subject?: string; hash?: { sha256?: string } } };
  http?: { request: { method?: string; body: { bytes: number } }; response?: { status_code: number; body: { bytes: number } } };
  url?: { path?: string };
  replguard: {
    request_id?: string;
    pop?: string;
    credentials?: string[];
    /** First 12 hex digits of the SHA-256 of the bearer secret or JWT presented (never the credential). */
    token_fingerprint?: string;
    /** The verified JWT's jti. */
    jti?: string;
    /** Number of entries in the body, once the body contract parsed it. */
    entries?: number;
    /** webhook-id (the nonce), once well-formed (verified when the outcome is a success). */
    webhook_id?: string;
    detail?: string;
  };
}

function tlsFields(conn: ConnectionInfo): AuditEvent['tls'] {
  const version = conn.tlsVersion?.startsWith('TLSv') ? conn.tlsVersion.slice(4) : conn.tlsVersion;
  return {
    ...(version !== undefined ? { version, version_protocol: 'tls' } : {}),
    ...(conn.peer ? { client: { subject: clip(conn.peer.subject), hash: { sha256: conn.peer.sha256 } } } : {}),
  };
}

export function requestEvent(
  ctx: RequestContext,
  reason: Reason,
  status: number,
  responseBytes: number,
  durationMs: number,
  detail: string | undefined,
): AuditEvent {
  const failed = reason !== 'FORWARDED';
  return {
    event: {
      kind: REASONS[reason].alert ? 'alert' : 'event',
      category: ['network', 'web'],
      type: failed ? ['denied'] : ['access', 'allowed'],
      action: 'replication-request',
      outcome: failed ? 'failure' : 'success',
      reason,
      duration: Math.round(durationMs * 1e6),
    },
    source: { ip: ctx.conn.remoteAddress, port: ctx.conn.remotePort },
    tls: tlsFields(ctx.conn),
    http: {
      request: { method: clip(ctx.req.method), body: { bytes: ctx.body?.length ?? 0 } },
      response: { status_code: status, body: { bytes: responseBytes } },
    },
    // The query string is never logged: it may carry a credential (AUTH_TOKEN_IN_QUERY).
    url: { path: clip(ctx.path ?? withoutQuery(ctx.req.url)) },
    replguard: {
      request_id: ctx.id,
      ...(ctx.pop !== undefined ? { pop: ctx.pop } : {}),
      credentials: ctx.credentials,
      ...(ctx.tokenFingerprint !== undefined ? { token_fingerprint: ctx.tokenFingerprint } : {}),
      ...(ctx.jti !== undefined ? { jti: clip(ctx.jti) } : {}),
      ...(ctx.entries !== undefined ? { entries: ctx.entries } : {}),
      ...(ctx.webhookId !== undefined ? { webhook_id: ctx.webhookId } : {}),
      ...(detail !== undefined ? { detail: clip(detail) } : {}),
    },
  };
}

/** The request target without its query string (which may carry a credential). */
export function withoutQuery(target: string | undefined): string | undefined {
  if (target === undefined) return undefined;
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}

/** A connection refused before any HTTP request (TLS layer). */
export function connectionEvent(conn: ConnectionInfo, reason: Reason, detail: string | undefined): AuditEvent {
  return {
    event: {
      kind: REASONS[reason].alert ? 'alert' : 'event',
      category: ['network', 'authentication'],
      type: ['connection', 'denied'],
      action: 'tls-connection',
      outcome: 'failure',
      reason,
    },
    source: { ip: conn.remoteAddress, port: conn.remotePort },
    tls: tlsFields(conn),
    replguard: { ...(detail !== undefined ? { detail: clip(detail) } : {}) },
  };
}
