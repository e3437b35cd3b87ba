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
  /** Absent only on events not tied to a client (e.g. a POP's ban ending). */
  source?: { ip: string; port: number };
  tls?: { version?: string; version_protocol?: string; client?: { subject?: string; hash?: { sha256?: string } } };
  http?: { request: { method?: string; body: { bytes: number } }; response?: { status_code: number; body: { bytes: number } } };
  url?: { path?: string };
  replguard: {
    request_id?: string;
    pop?: string;
    credentials?: string[];
    detail?: string;
    /** On ban events: which key, since and until when (ISO 8601), and what started it. */
    ban?: { key: string; since?: string; until: string; failures?: number; trigger?: string };
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

/** What a ban event says about the ban (limits/bans.ts). */
export interface BanFacts {
  readonly key: string;
  readonly since: number;
  readonly until: number;
  readonly failures: number;
  readonly reason: string;
}

function banFields(ban: BanFacts): NonNullable<AuditEvent['replguard']['ban']> {
  return {
    key: clip(ban.key)!,
    ...(ban.since > 0 ? { since: new Date(ban.since).toISOString() } : {}),
    until: new Date(ban.until).toISOString(),
    ...(ban.failures > 0 ? { failures: ban.failures } : {}),
    ...(ban.reason !== 'unknown' ? { trigger: clip(ban.reason)! } : {}),
  };
}

/** The subject of a ban key as ECS fields: a POP id, or a single client address. */
function banSubject(key: string): Pick<AuditEvent, 'source'> & { pop?: string } {
  if (key.startsWith('pop:')) return { pop: key.slice(4) };
  const address = key.startsWith('addr:') ? key.slice(5) : '';
  return address && !address.includes('/') ? { source: { ip: address, port: 0 } } : {};
}

/** A ban starting or ending: an alert not tied to a request (limits/bans.ts writes it). */
export function banEvent(reason: 'LIMIT_BAN_STARTED' | 'LIMIT_BAN_ENDED', ban: BanFacts): AuditEvent {
  const { pop, source } = banSubject(ban.key);
  return {
    event: {
      kind: 'alert',
      category: ['intrusion_detection', 'network'],
      type: [reason === 'LIMIT_BAN_STARTED' ? 'start' : 'end'],
      action: reason === 'LIMIT_BAN_STARTED' ? 'ban-start' : 'ban-end',
      outcome: 'success',
      reason,
    },
    ...(source ? { source } : {}),
    replguard: { ...(pop !== undefined ? { pop } : {}), ban: banFields(ban) },
  };
}

/** An operator's request on the admin listener that touches bans (server/admin.ts). */
export function adminEvent(
  reason: 'LIMIT_BANS_LISTED' | 'LIMIT_BAN_LIFTED',
  request: { ip: string; port: number; method: string; path: string; status: number; responseBytes: number; requestId: string },
  ban: BanFacts | undefined,
  detail: string | undefined,
): AuditEvent {
  const ok = request.status < 400;
  return {
    event: {
      kind: REASONS[reason].alert && ok ? 'alert' : 'event',
      category: ['configuration', 'intrusion_detection'],
      type: reason === 'LIMIT_BAN_LIFTED' ? ['deletion', 'end'] : ['access'],
      action: reason === 'LIMIT_BAN_LIFTED' ? 'ban-lift' : 'bans-list',
      outcome: ok ? 'success' : 'failure',
      reason,
    },
    source: { ip: request.ip, port: request.port },
    http: { request: { method: clip(request.method), body: { bytes: 0 } }, response: { status_code: request.status, body: { bytes: request.responseBytes } } },
    url: { path: clip(request.path) },
    replguard: {
      request_id: request.requestId,
      ...(ban ? { ban: banFields(ban) } : {}),
      ...(detail !== undefined ? { detail: clip(detail) } : {}),
    },
  };
}
