/**
 * The audit event: one per request (and one per connection refused at the TLS layer), with
 * Elastic Common Schema field names so a SIEM ingests it without mapping. Every client-supplied
 * string is a structured field, clipped to MAX_CLIENT_STRING; JSON encoding escapes newlines,
 * carriage returns, ANSI escapes and quotes, so no value can forge a line or a field.
 * Credentials never appear: only which were checked, the JWT `jti` and a short fingerprint; and
 * a client string that carries something credential-shaped (a JWT in the path, a bearer secret in
 * the User-Agent) is cut before it (core/redact.ts), the field named in `replguard.redacted`.
 */
import { credentialFingerprint } from '../crypto/secret-compare.ts';
import type { ConnectionInfo, RequestContext } from '../pipeline/context.ts';
import { REASONS, type Reason } from '../pipeline/reasons.ts';
import { redactClientText } from '../core/redact.ts';

/** ECS version the field names follow (https://www.elastic.co/guide/en/ecs/8.11). */
export const ECS_VERSION = '8.11.0';

/**
 * Longest client-supplied string kept in an event, in UTF-16 code units of the original value
 * (256); a longer one is cut there and ends with "…". Applies to the method, path, User-Agent,
 * certificate subject, webhook id, JWT `jti`, token fingerprint and the detail text.
 */
export const MAX_CLIENT_STRING = 256;

/**
 * Characters that can change how a decoded value looks on a terminal or in a viewer: C0 and C1
 * controls (ESC, CR, LF, the 8-bit CSI U+009B), DEL, line and paragraph separators, and the
 * bidirectional overrides (Trojan Source). JSON encoding already keeps them from breaking the
 * NDJSON line; this also keeps `jq -r` or a SIEM's display from obeying them.
 */
const UNSAFE_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * A client-supplied string as it goes into an event: cut to MAX_CLIENT_STRING, then every unsafe
 * character written as the visible text `\uXXXX` (so the field is at most 6 x 256 + 1 characters).
 * Use it through `Fields.client` when the string may carry a credential.
 */
export function clip(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  let out = value;
  if (out.length > MAX_CLIENT_STRING) {
    let end = MAX_CLIENT_STRING;
    // Do not split a surrogate pair: half a character would become an invalid code point.
    const last = out.charCodeAt(end - 1);
    if (last >= 0xd800 && last <= 0xdbff) end -= 1;
    out = `${out.slice(0, end)}…`;
  }
  return out.replace(UNSAFE_CHARACTERS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export interface AuditEvent {
  ecs: { version: string };
  event: {
    kind: 'event' | 'alert';
    category: string[];
    type: string[];
    action: string;
    outcome: 'success' | 'failure';
    /** The reason code (docs/reasons.md). */
    reason: string;
    module: 'replguard';
    dataset: 'replguard.audit';
    /** Nanoseconds, per ECS. */
    duration?: number;
    /** On a summary of repeated refusals (audit/repeats.ts): the first and the last of them. */
    start?: string;
    end?: string;
  };
  /** Absent only on events not tied to a client (e.g. a POP's ban ending); `port` absent when not known (a ban of an address). */
  source?: { ip: string; port?: number };
  tls?: {
    version?: string;
    version_protocol?: string;
    client?: { subject?: string; hash?: { sha256?: string }; not_after?: string };
  };
  http?: {
    request: { method?: string; body?: { bytes: number } };
    response?: { status_code: number; body: { bytes: number } };
  };
  url?: { path?: string };
  user_agent?: { original: string };
  /** Absent when there is nothing to say beyond the ECS fields (a TLS refusal without detail). */
  replguard?: {
    request_id?: string;
    /** The authenticated POP (a configured peer id). */
    pop?: string;
    /** Which credentials were checked, in order (mtls, bearer, jwt, signature); absent when none was. */
    credentials?: string[];
    /** Number of `entries` in the JSON body. */
    entries?: number;
    /** The Standard Webhooks `webhook-id` (the nonce). */
    webhook_id?: string;
    /** The claimed nonce's fingerprint (crypto/secret-compare.ts), when its signature did not verify. */
    webhook_id_fingerprint?: string;
    /** The JWT `jti`. */
    jti?: string;
    /** A short hash naming the bearer secret or JWT used; never the credential. */
    token_fingerprint?: string;
    /** Nanoseconds from forwarding to the upstream's response headers. */
    upstream_duration?: number;
    /** The upstream's own status and body size, once it answered (the client got a generic body for a 5xx unless upstream.relay_error_bodies). */
    upstream_status?: number;
    upstream_body_bytes?: number;
    /** Client header fields not forwarded upstream (not allow-listed), beyond those the guard consumes. */
    headers_dropped?: number;
    /** What went wrong beyond the reason code (never sent to the client). */
    detail?: string;
    /**
     * On a summary of repeated refusals (audit/repeats.ts): how many refusals of this reason
     * from this client the event stands for, beyond the one written when they began.
     */
    repeated?: number;
    /**
     * On such a summary: the distinct client certificates (SHA-256) its refusals presented, at
     * most REPEAT_CERTIFICATES_MAX, so no certificate tried in a flood goes unrecorded.
     */
    repeated_certificates?: string[];
    /** True when more distinct certificates were presented than repeated_certificates lists. */
    repeated_certificates_truncated?: boolean;
    /**
     * The fields cut at something credential-shaped (`url.path`, `user_agent.original`,
     * `http.request.method`, `tls.client.subject`, `replguard.detail`): each ends in "[Redacted]"
     * where the credential began. Absent when nothing was cut.
     */
    redacted?: string[];
    /** On ban events: which key, since and until when (ISO 8601), and what started it. */
    ban?: { key: string; since?: string; until: string; failures?: number; trigger?: string };
    /** On CREDENTIAL_REMOVED: each file whose material went out of force, its config key and POP. */
    removed?: Array<{ key: string; file: string; pop?: string }>;
    /**
     * On REGISTRY_* events (docs/control-plane.md): the registry's serial (and the one it
     * replaced), where it came from, who signed it, when it expires, the POPs it added, removed
     * and changed, why a document was refused, and what this process now does. On
     * REGISTRY_PEERS_*, `added`, `removed` and `changed` are the guard's peer ids.
     */
    registry?: RegistryFields;
    /**
     * The signer's epoch and the batch's number (replay.sequence; the signer's events carry the
     * same two fields): on a request whose webhook-id carries them, and on SEQUENCE_* events.
     */
    epoch?: string;
    sequence?: number;
    /** On SEQUENCE_GAP: the missing numbers, from and to (inclusive), and how many. */
    gap?: { from: number; to: number; count: number };
  };
}

/** `replguard.*`, the one custom namespace of an event. */
export type ReplguardFields = NonNullable<AuditEvent['replguard']>;

/** `replguard.registry` of a REGISTRY_* event. */
export interface RegistryFields {
  source: string;
  serial?: number;
  previous_serial?: number;
  kid?: string;
  /** ISO 8601. */
  expires?: string;
  added?: string[];
  removed?: string[];
  changed?: string[];
  /** On REGISTRY_PEERS_*: `control_plane.peers` (merge or replace). */
  peer_mode?: string;
  /** On REGISTRY_PEERS_*: how many peers are admitted from the registry now. */
  peers_from_registry?: number;
  /** On REGISTRY_PEERS_*: the registry POPs replicating here that are left out, each `id: why`. */
  conflicts?: string[];
  /** Why a document was refused, or the source failed (REGISTRY_REFUSALS of registry/verify.ts, REGISTRY_SOURCE_FAILURES of registry/hq-source.ts). */
  refusal?: string;
  /** `serving`, or the request code every request gets while this process does not serve. */
  state?: string;
}

export function baseEvent(reason: string, alert: boolean, outcome: 'success' | 'failure', action: string, category: string[], type: string[]): AuditEvent['event'] {
  return { kind: alert ? 'alert' : 'event', category, type, action, outcome, reason, module: 'replguard', dataset: 'replguard.audit' };
}

// The builders below assign optional fields one by one rather than spreading conditional
// objects: a field that is unknown is left out, and an event costs no intermediate objects
// (one is built per request).

/**
 * Client strings for one event: redacted (core/redact.ts), then clipped; remembers which
 * fields were cut, for `replguard.redacted`.
 */
export class Fields {
  readonly redacted: string[] = [];

  /** `value` redacted and clipped; `field` is its ECS name, listed when something was cut. */
  client(field: string, value: string | undefined): string | undefined {
    if (value === undefined) return undefined;
    const { text, cut } = redactClientText(value);
    if (cut) this.redacted.push(field);
    return clip(text);
  }

  /** Sets `replguard.redacted` when a field was cut. */
  mark(replguard: { redacted?: string[] }): void {
    if (this.redacted.length > 0) replguard.redacted = this.redacted;
  }
}

/**
 * `source` of an event: the client's address, and its port when one is known (a placeholder
 * port 0 is left out, as ECS asks of unknown values); nothing without an address.
 */
export function sourceFields(ip: string | undefined, port: number | undefined): AuditEvent['source'] {
  if (ip === undefined || ip === '') return undefined;
  return port !== undefined && port > 0 && port <= 65535 ? { ip, port } : { ip };
}

/**
 * `tls` of each connection's events, built once: the TLS version and the certificate are read
 * once per connection and never change, and redacting, clipping and formatting them again for
 * every request was a measurable part of an event's cost. `subjectCut`: `tls.client.subject`
 * goes into `replguard.redacted`.
 */
const tlsByConnection = new WeakMap<ConnectionInfo, { tls: AuditEvent['tls']; subjectCut: boolean }>();

/** `tls` of an event; undefined when nothing is known (no handshake got as far as a version). */
function tlsFields(conn: ConnectionInfo, fields: Fields): AuditEvent['tls'] {
  let known = tlsByConnection.get(conn);
  if (!known) {
    const own = new Fields();
    known = { tls: buildTlsFields(conn, own), subjectCut: own.redacted.length > 0 };
    tlsByConnection.set(conn, known);
  }
  if (known.subjectCut) fields.redacted.push('tls.client.subject');
  // Each event gets its own copy: an event is the caller's to change (audit/repeats.ts does).
  return known.tls && copyTls(known.tls);
}

function copyTls(tls: NonNullable<AuditEvent['tls']>): NonNullable<AuditEvent['tls']> {
  const copy: NonNullable<AuditEvent['tls']> = { ...tls };
  if (tls.client) {
    copy.client = { ...tls.client };
    if (tls.client.hash) copy.client.hash = { ...tls.client.hash };
  }
  return copy;
}

function buildTlsFields(conn: ConnectionInfo, fields: Fields): AuditEvent['tls'] {
  const tls: NonNullable<AuditEvent['tls']> = {};
  const version = conn.tlsVersion?.startsWith('TLSv') ? conn.tlsVersion.slice(4) : conn.tlsVersion;
  if (version !== undefined) {
    tls.version = version;
    tls.version_protocol = 'tls';
  }
  const peer = conn.peer;
  if (peer) {
    const client: NonNullable<typeof tls.client> = {};
    const subject = fields.client('tls.client.subject', peer.subject);
    if (subject) client.subject = subject;
    if (peer.sha256) client.hash = { sha256: peer.sha256 };
    if (Number.isFinite(peer.notAfterMs)) client.not_after = new Date(peer.notAfterMs).toISOString();
    if (Object.keys(client).length > 0) tls.client = client;
  }
  return Object.keys(tls).length > 0 ? tls : undefined;
}

/**
 * The request target up to the query or the fragment, whichever comes first. Neither is ever
 * logged: a client may put a credential there (`?access_token=`, `#access_token=`), and the
 * route stage refuses both anyway.
 */
export function requestPath(target: string | undefined): string | undefined {
  if (target === undefined) return undefined;
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c === 0x3f /* ? */ || c === 0x23 /* # */) return target.slice(0, i);
  }
  return target;
}

export function userAgent(value: string | string[] | undefined, fields: Fields): AuditEvent['user_agent'] {
  const text = Array.isArray(value) ? value.join(', ') : value;
  return text === undefined ? undefined : { original: fields.client('user_agent.original', text)! };
}

/**
 * Whether a refusal is a failed authentication: a credential failed (the client certificate at
 * the TLS layer or at the request, mTLS identity, bearer, JWT, a credential in the URL, the
 * Standard Webhooks signature: the `TLS_CLIENT_`, `AUTH_` and `SIGNATURE_` codes).
 */
export function isAuthenticationFailure(reason: Reason): boolean {
  return /^(?:AUTH|TLS_CLIENT|SIGNATURE)_/.test(reason);
}

/**
 * ECS `event.category` of a request's event. A failed authentication is also an
 * `authentication` event, so SIEM rules written for ECS authentication failures see it; no
 * other outcome is one (a malformed handshake is not a login attempt).
 */
export function requestCategory(reason: Reason): string[] {
  return isAuthenticationFailure(reason) ? ['authentication', 'network', 'web'] : ['network', 'web'];
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
  const fields = new Fields();
  // In the order the fields are listed in `replguard.redacted`.
  const tls = tlsFields(ctx.conn, fields);
  const method = fields.client('http.request.method', ctx.req.method);
  const event: AuditEvent = {
    ecs: { version: ECS_VERSION },
    event: baseEvent(reason, REASONS[reason].alert, failed ? 'failure' : 'success', 'replication-request', requestCategory(reason), failed ? ['denied'] : ['access', 'allowed']),
    http: {
      request: { ...(method ? { method } : {}), body: { bytes: ctx.body?.length ?? 0 } },
      // Status 0: the connection was cut before any response, so there is none to describe.
      ...(status > 0 ? { response: { status_code: status, body: { bytes: responseBytes } } } : {}),
    },
    replguard: { request_id: ctx.id },
  };
  const source = sourceFields(ctx.conn.remoteAddress, ctx.conn.remotePort);
  if (source) event.source = source;
  if (tls) event.tls = tls;
  // A path the route stage accepted is a configured route: the operator's text, kept whole.
  const path = ctx.path !== undefined ? clip(ctx.path) : fields.client('url.path', requestPath(ctx.req.url));
  if (path) event.url = { path };
  event.event.duration = Math.round(durationMs * 1e6);
  const ua = userAgent(ctx.req.headers['user-agent'], fields);
  if (ua) event.user_agent = ua;
  const r = event.replguard!;
  if (ctx.pop !== undefined) r.pop = ctx.pop;
  if (ctx.credentials.length > 0) r.credentials = ctx.credentials;
  if (ctx.entries !== undefined) r.entries = ctx.entries;
  // A nonce whose signature verified (webhookTimestamp is set then) is the POP's signed data,
  // kept whole for forensics. A claimed one is client text like any other: redacted, with its
  // fingerprint, so that a refused request can still be matched with the sender's own record.
  if (ctx.webhookId !== undefined && ctx.webhookId !== '') {
    if (ctx.webhookTimestamp !== undefined) r.webhook_id = clip(ctx.webhookId);
    else {
      r.webhook_id = fields.client('replguard.webhook_id', ctx.webhookId);
      r.webhook_id_fingerprint = credentialFingerprint(ctx.webhookId);
    }
  }
  if (ctx.batch !== undefined) {
    r.epoch = ctx.batch.epoch;
    r.sequence = ctx.batch.sequence;
  }
  if (ctx.jti) r.jti = clip(ctx.jti);
  if (ctx.tokenFingerprint) r.token_fingerprint = clip(ctx.tokenFingerprint);
  if (ctx.upstreamMs !== undefined) r.upstream_duration = Math.round(ctx.upstreamMs * 1e6);
  if (ctx.upstreamStatus !== undefined) {
    r.upstream_status = ctx.upstreamStatus;
    r.upstream_body_bytes = ctx.upstreamBodyBytes;
  }
  if (ctx.headersDropped !== undefined) r.headers_dropped = ctx.headersDropped;
  if (detail) r.detail = fields.client('replguard.detail', detail);
  fields.mark(r);
  return event;
}

/** A connection refused before any HTTP request (TLS layer). */
export function connectionEvent(conn: ConnectionInfo, reason: Reason, detail: string | undefined): AuditEvent {
  const fields = new Fields();
  const event: AuditEvent = {
    ecs: { version: ECS_VERSION },
    event: baseEvent(reason, REASONS[reason].alert, 'failure', 'tls-connection', isAuthenticationFailure(reason) ? ['authentication', 'network'] : ['network'], ['connection', 'denied']),
  };
  const source = sourceFields(conn.remoteAddress, conn.remotePort);
  if (source) event.source = source;
  const tls = tlsFields(conn, fields);
  if (tls) event.tls = tls;
  if (detail) {
    event.replguard = { detail: fields.client('replguard.detail', detail)! };
    fields.mark(event.replguard);
  }
  return event;
}
