/**
 * The audit events that are no request's outcome: reloads of credential material, bans starting
 * and ending, and ban administration on the admin listener. Same envelope and field rules as the
 * request events (audit/event.ts); their codes and alert flags come from the reason table.
 */
import { REASONS, type EventReason } from '../pipeline/reasons.ts';
import type { BanRecord } from '../store/ban-store.ts';
import { baseEvent, clip, ECS_VERSION, Fields, requestPath, sourceFields, userAgent, type AuditEvent, type RegistryFields, type ReplguardFields } from './event.ts';

/** A file whose material a reload took out of force (reload/source.ts HeldFile). */
export interface RemovedFile {
  readonly key: string;
  readonly file: string;
  readonly pop?: string;
}

/**
 * A reload of certificates, keys or tokens (SIGHUP, file change, interval). A failure is an
 * alert: someone may be swapping credentials, or a rotation is about to cause an outage. A
 * success that removed material is CREDENTIAL_REMOVED, an alert too: it is how an operator cuts
 * a POP off (or how someone with access to the files would), and `replguard.removed` says which
 * key path and POP; `replguard.pop` is set when they are all one POP's.
 * `detail` is operator text (file and key path, never file content).
 */
export function reloadEvent(result: 'success' | 'failure', trigger: string, detail: string | undefined, removed: readonly RemovedFile[] = []): AuditEvent {
  const reason: EventReason = result === 'failure' ? 'CONFIG_RELOAD_FAILED' : removed.length > 0 ? 'CREDENTIAL_REMOVED' : 'CONFIG_RELOADED';
  const event: AuditEvent = {
    ecs: { version: ECS_VERSION },
    event: baseEvent(reason, REASONS[reason].alert, result, 'config-reload', ['configuration'], removed.length > 0 ? ['change', 'deletion'] : ['change']),
    replguard: { detail: clip(`${trigger}${detail !== undefined ? `: ${detail}` : ''}`)! },
  };
  const r = event.replguard!;
  if (removed.length > 0) {
    r.removed = removed.map((r) => {
      const entry: { key: string; file: string; pop?: string } = { key: clip(r.key)!, file: clip(r.file)! };
      if (r.pop !== undefined) entry.pop = clip(r.pop)!;
      return entry;
    });
    const pops = new Set(removed.map((r) => r.pop));
    const [only] = pops;
    if (pops.size === 1 && only !== undefined) r.pop = only;
  }
  return event;
}

function banFields(ban: BanRecord): NonNullable<ReplguardFields['ban']> {
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
  return address && !address.includes('/') ? { source: { ip: address } } : {};
}

/** A ban starting or ending: an alert not tied to a request (limits/bans.ts writes it). */
export function banEvent(reason: 'LIMIT_BAN_STARTED' | 'LIMIT_BAN_ENDED', ban: BanRecord): AuditEvent {
  const { pop, source } = banSubject(ban.key);
  const started = reason === 'LIMIT_BAN_STARTED';
  return {
    ecs: { version: ECS_VERSION },
    event: baseEvent(reason, REASONS[reason].alert, 'success', started ? 'ban-start' : 'ban-end', ['intrusion_detection', 'network'], [started ? 'start' : 'end']),
    ...(source ? { source } : {}),
    replguard: { ...(pop !== undefined ? { pop } : {}), ban: banFields(ban) },
  };
}

/** The outcomes of a ban-administration request (service/admin.ts): done, or refused and why. */
export type AdminReason =
  | 'LIMIT_BANS_LISTED' | 'LIMIT_BAN_LIFTED'
  | 'ADMIN_CALLER_NOT_LOOPBACK' | 'ADMIN_TOKEN_MISSING' | 'ADMIN_TOKEN_INVALID'
  | 'AUTH_TOKEN_IN_QUERY' | 'ROUTE_QUERY_NOT_ALLOWED' | 'ROUTE_METHOD_NOT_ALLOWED';

/**
 * How the caller of a ban-administration request was let in (service/admin-access.ts): `loopback`
 * or `admin_token` (with the token's fingerprint, never the token); nothing when it was refused
 * before or at that decision (then `fingerprint` names a presented wrong token, if any).
 */
export interface AdminCallerFacts {
  readonly via?: 'loopback' | 'admin_token';
  readonly fingerprint?: string;
}

/**
 * An operator's request on the admin listener that touches bans (service/admin.ts), done or
 * refused. `event.action` names what was asked for: `bans-list` for /bans, `ban-lift` for
 * /bans/{key}. A lift or list that went wrong (400, 404, 503) keeps its LIMIT_* code, without
 * an alert; a refusal has its own code and is an alert when the table says so.
 */
export function adminEvent(
  reason: AdminReason,
  request: { ip: string; port: number; method: string; path: string; status: number; responseBytes: number; requestId: string; userAgent?: string | string[] },
  ban: BanRecord | undefined,
  detail: string | undefined,
  caller: AdminCallerFacts = {},
): AuditEvent {
  const ok = request.status < 400;
  const done = reason === 'LIMIT_BANS_LISTED' || reason === 'LIMIT_BAN_LIFTED';
  const lift = request.path !== '/bans';
  const fields = new Fields();
  const source = sourceFields(request.ip, request.port);
  const event: AuditEvent = {
    ecs: { version: ECS_VERSION },
    event: baseEvent(reason, REASONS[reason].alert && (ok || !done), ok ? 'success' : 'failure', lift ? 'ban-lift' : 'bans-list',
      ['configuration', 'intrusion_detection'], !done ? ['denied'] : lift ? ['deletion'] : ['access']),
    ...(source ? { source } : {}),
    http: { request: { method: fields.client('http.request.method', request.method), body: { bytes: 0 } }, response: { status_code: request.status, body: { bytes: request.responseBytes } } },
    url: { path: fields.client('url.path', requestPath(request.path)) },
    replguard: {
      request_id: request.requestId,
      ...(caller.via !== undefined ? { credentials: [caller.via] } : {}),
      ...(caller.fingerprint !== undefined ? { token_fingerprint: clip(caller.fingerprint) } : {}),
      ...(ban ? { ban: banFields(ban) } : {}),
      ...(detail !== undefined ? { detail: fields.client('replguard.detail', detail) } : {}),
    },
  };
  const ua = userAgent(request.userAgent, fields);
  if (ua) event.user_agent = ua;
  fields.mark(event.replguard!);
  return event;
}

/**
 * The registry events (registry/monitor.ts): a change, a refusal, a source that failed, a cache
 * that cannot be written, an expiry warning, serving stopped or resumed, the guard's peers from it.
 */
export type RegistryEventReason =
  | 'REGISTRY_UPDATED' | 'REGISTRY_REFUSED' | 'REGISTRY_SOURCE_FAILED' | 'REGISTRY_CACHE_WRITE_FAILED'
  | 'REGISTRY_EXPIRING' | 'REGISTRY_SERVING_STOPPED' | 'REGISTRY_SERVING_RESUMED'
  | 'REGISTRY_PEERS_CHANGED' | 'REGISTRY_PEERS_NOT_APPLIED';

/** A registry event; `detail` is operator text (file names, serials, the verifier's message), clipped. */
export function registryEvent(reason: RegistryEventReason, registry: RegistryFields, detail?: string): AuditEvent {
  const failure = reason === 'REGISTRY_REFUSED' || reason === 'REGISTRY_SOURCE_FAILED' || reason === 'REGISTRY_CACHE_WRITE_FAILED' || reason === 'REGISTRY_SERVING_STOPPED' || reason === 'REGISTRY_PEERS_NOT_APPLIED';
  const fields: RegistryFields = { ...registry, source: clip(registry.source)! };
  for (const list of ['added', 'removed', 'changed', 'conflicts'] as const) {
    const ids = fields[list];
    if (ids !== undefined) fields[list] = ids.slice(0, 100).map((id) => clip(id)!);
  }
  return {
    ecs: { version: ECS_VERSION },
    event: baseEvent(reason, REASONS[reason].alert, failure ? 'failure' : 'success', 'registry', ['configuration'], ['change']),
    replguard: { registry: fields, ...(detail !== undefined ? { detail: clip(detail) } : {}) },
  };
}

/** What the batch-number tracking found (replay/sequence-stage.ts), not tied to one request's outcome. */
export interface SequenceFinding {
  readonly reason: 'SEQUENCE_NEW_EPOCH' | 'SEQUENCE_GAP' | 'SEQUENCE_DUPLICATE' | 'SEQUENCE_BELOW_LOWEST';
  readonly pop: string;
  readonly epoch: string;
  /** The number that arrived (all but SEQUENCE_GAP). */
  readonly sequence?: number;
  /** SEQUENCE_GAP: the missing numbers, inclusive. */
  readonly gap?: readonly [number, number];
  /** The request that revealed it, when one did (a gap is found by a sweep or a later batch). */
  readonly requestId?: string;
}

/** A SEQUENCE_* event: the POP, the epoch and the number or the missing range. */
export function sequenceEvent(finding: SequenceFinding): AuditEvent {
  const { reason } = finding;
  const r: ReplguardFields = { pop: clip(finding.pop)!, epoch: finding.epoch };
  if (finding.sequence !== undefined) r.sequence = finding.sequence;
  if (finding.gap !== undefined) r.gap = { from: finding.gap[0], to: finding.gap[1], count: finding.gap[1] - finding.gap[0] + 1 };
  if (finding.requestId !== undefined) r.request_id = finding.requestId;
  return {
    ecs: { version: ECS_VERSION },
    event: baseEvent(reason, REASONS[reason].alert, reason === 'SEQUENCE_NEW_EPOCH' ? 'success' : 'failure', 'batch-sequence', ['network'], reason === 'SEQUENCE_NEW_EPOCH' ? ['start'] : ['info']),
    replguard: r,
  };
}
