/**
 * The one table of outcomes. Every request ends with exactly one of these codes in its audit
 * event; a rejected one also gets the status listed here and the fixed body for that status.
 * `alert` marks the events a SIEM should page on (event.kind: alert).
 * `connection` marks refusals decided at the TLS layer, before any HTTP request exists.
 * docs/reasons.md and README list every code (a test checks the parity).
 */
export const REASONS = {
  FORWARDED: { status: 200, alert: false, description: 'every check passed; the upstream answered (its status is logged)' },

  TLS_CLIENT_CERT_MISSING: { status: 401, alert: true, connection: true, description: 'mTLS is required and the client sent no certificate' },
  TLS_CLIENT_CERT_UNTRUSTED: { status: 401, alert: true, connection: true, description: 'the client certificate does not chain to tls.client_ca_file' },
  TLS_CLIENT_CERT_EXPIRED: { status: 401, alert: true, connection: true, description: 'the client certificate has expired' },
  TLS_CLIENT_CERT_NOT_YET_VALID: { status: 401, alert: true, connection: true, description: 'the client certificate is not valid yet' },
  TLS_CLIENT_CERT_REVOKED: { status: 401, alert: true, connection: true, description: 'the client certificate is listed in tls.crl_file' },
  TLS_CLIENT_CERT_INVALID: { status: 401, alert: true, connection: true, description: 'the client certificate failed verification for another reason (bad signature, purpose, CRL problem)' },
  TLS_HANDSHAKE_FAILED: { status: 400, alert: false, connection: true, description: 'the TLS handshake failed (protocol version, cipher, malformed record)' },

  HTTP_MALFORMED: { status: 400, alert: false, description: 'the HTTP request could not be parsed (including request-smuggling forms)' },
  HTTP_HEADERS_TOO_LARGE: { status: 400, alert: false, description: 'the request headers exceed the size or count limit' },
  HTTP_TIMEOUT: { status: 408, alert: false, description: 'the request (headers or body) did not arrive in time' },

  ROUTE_TARGET_INVALID: { status: 400, alert: false, description: 'the path is not in normal form ("..", ".", "//", encoded "/" or ".", bad characters) or not origin-form' },
  ROUTE_QUERY_NOT_ALLOWED: { status: 400, alert: false, description: 'the request has a query string; the replication API takes none' },
  ROUTE_NOT_FOUND: { status: 404, alert: false, description: 'no configured route has this path' },
  ROUTE_METHOD_NOT_ALLOWED: { status: 405, alert: false, description: 'the path is configured, for another method' },

  AUTH_PEER_UNKNOWN: { status: 403, alert: true, description: 'the certificate is valid but names no configured peer' },
  AUTH_PEER_AMBIGUOUS: { status: 403, alert: true, description: 'the certificate matches more than one configured peer' },
  AUTH_CERT_PIN_MISMATCH: { status: 403, alert: true, description: "the certificate's SHA-256 is not among the peer's cert_sha256 pins" },
  AUTH_CERT_EXPIRED: { status: 401, alert: true, description: 'the client certificate expired while its connection was open' },

  BODY_TOO_LARGE: { status: 413, alert: false, description: 'the declared or streamed body exceeds limits.max_body_bytes' },
  BODY_INCOMPLETE: { status: 400, alert: false, description: 'the client closed the connection before sending the whole body' },

  UPSTREAM_UNAVAILABLE: { status: 502, alert: false, description: 'the upstream refused or dropped the connection' },
  UPSTREAM_TIMEOUT: { status: 504, alert: false, description: 'the upstream did not answer within upstream.timeout' },
  UPSTREAM_ABORTED: { status: 502, alert: false, description: 'the upstream broke off its response after it had started' },

  SHUTTING_DOWN: { status: 503, alert: false, description: 'the guard is draining and refuses new work' },
  INTERNAL: { status: 500, alert: true, description: 'an unexpected error; its stack is in the operational log' },
} as const satisfies Record<string, { status: number; alert: boolean; connection?: boolean; description: string }>;

export type Reason = keyof typeof REASONS;

/** A request refused by a stage. The detail goes to the audit log only, never to the client. */
export class Rejection extends Error {
  readonly reason: Reason;
  readonly status: number;
  /** Seconds, for 429 and 503 `Retry-After`. */
  readonly retryAfter: number | undefined;
  /** Close the connection after the response (e.g. an unread request body). */
  readonly closeConnection: boolean;
  /** For 405: the methods the path does allow. */
  readonly allow: readonly string[] | undefined;

  /** What the audit log says beyond the reason code (never sent to the client). */
  readonly detail: string | undefined;

  constructor(reason: Reason, detail?: string, options: { retryAfter?: number; closeConnection?: boolean; allow?: readonly string[] } = {}) {
    super(detail ?? reason);
    this.detail = detail;
    this.name = 'Rejection';
    this.reason = reason;
    this.status = REASONS[reason].status;
    this.retryAfter = options.retryAfter;
    this.closeConnection = options.closeConnection ?? false;
    this.allow = options.allow;
  }
}
