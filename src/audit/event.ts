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
    url: { path: clip(ctx.path ?? ctx.req.url) },
    replguard: {
      request_id: ctx.id,
      ...(ctx.pop !== undefined ? { pop: ctx.pop } : {}),
      credentials: ctx.credentials,
      ...(detail !== undefined ? { detail: clip(detail) } : {}),
    },
  };
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
