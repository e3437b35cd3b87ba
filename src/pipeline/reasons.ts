/**
 * The one table of outcomes, and the policy that goes with each. Every request, refused
 * connection and operational event ends with exactly one of these codes in its audit event.
 * Columns:
 * - `kind`: `request` (an HTTP request's outcome, on the guard or its admin listener),
 *   `connection` (refused at the TLS layer, before any HTTP request exists), `event` (not tied to
 *   a request: bans starting and ending, reloads), `signer` (an attempt of the signer, role:
 *   primary, to deliver).
 * - `status`: the HTTP status sent with the fixed body for that status; only where one is sent
 *   (a connection code's status is sent when a request on an open connection meets it).
 * - `alert`: the event is written with event.kind: alert, the ones a SIEM should page on.
 * - `bans`: a refusal with this code counts toward a ban of its POP or address (limits/bans.ts
 *   reads this column; test/unit/pipeline/reasons.test.ts holds the rules it follows).
 * docs/reasons.md lists every code with these columns (test/docs/reasons.test.ts checks it).
 */
export const REASONS = {
  FORWARDED: { kind: 'request', status: 200, alert: false, bans: false, description: 'every check passed; the upstream answered (its status is logged)' },

  TLS_CLIENT_CERT_MISSING: { kind: 'connection', status: 401, alert: true, bans: true, description: 'mTLS is required and the client sent no certificate' },
  TLS_CLIENT_CERT_UNTRUSTED: { kind: 'connection', status: 401, alert: true, bans: true, description: 'the client certificate does not chain to tls.client_ca_file (another CA, self-signed, a signature that does not verify)' },
  TLS_CLIENT_CERT_EXPIRED: { kind: 'connection', status: 401, alert: true, bans: true, description: 'the client certificate has expired' },
  TLS_CLIENT_CERT_NOT_YET_VALID: { kind: 'connection', status: 401, alert: true, bans: true, description: 'the client certificate is not valid yet' },
  TLS_CLIENT_CERT_REVOKED: { kind: 'connection', status: 401, alert: true, bans: true, description: 'the client certificate (or an issuer of its chain) is listed in tls.crl_file; also the outcome of a request on a connection opened before the CRL that revokes it was loaded' },
  TLS_CLIENT_CERT_INVALID: { kind: 'connection', status: 401, alert: true, bans: true, description: 'the client certificate failed verification for another reason (not for client authentication, a CA certificate, an issuer that is not a CA, an unknown critical extension, no current CRL from its issuer)' },
  TLS_HANDSHAKE_FAILED: { kind: 'connection', status: 400, alert: false, bans: false, description: 'the TLS handshake failed or broke off (protocol version, no common cipher, the client went away), or negotiated a protocol or cipher outside the policy' },
  TLS_HANDSHAKE_MALFORMED: { kind: 'connection', status: 400, alert: false, bans: true, description: 'the client sent bytes that are not TLS (a malformed record or ClientHello, plain HTTP): counts toward a ban of the address' },
  TLS_HANDSHAKE_TIMEOUT: { kind: 'connection', status: 408, alert: false, bans: false, description: 'the TLS handshake did not complete within limits.handshake_timeout of the TCP connection' },
  LIMIT_CONNECTIONS_EXCEEDED: { kind: 'connection', status: 503, alert: false, bans: false, description: 'cut at accept: limits.max_connections connections are open, or limits.max_unauthenticated_connections have not authenticated yet' },
  LIMIT_ADDRESS_CONNECTIONS_EXCEEDED: { kind: 'connection', status: 429, alert: false, bans: false, description: 'cut at accept: this client address already holds limits.max_unauthenticated_per_address connections that have not authenticated' },

  HTTP_MALFORMED: { kind: 'request', status: 400, alert: false, bans: true, description: 'the HTTP request could not be parsed (including request-smuggling forms)' },
  HTTP_HEADERS_TOO_LARGE: { kind: 'request', status: 400, alert: false, bans: true, description: 'the request headers exceed the size or count limit' },
  HTTP_TIMEOUT: { kind: 'request', status: 408, alert: false, bans: false, description: 'the request (headers or body) did not arrive in time' },
  HTTP_HEADER_DUPLICATE: { kind: 'request', status: 400, alert: false, bans: false, description: 'a header read as one value (Content-Type, Content-Encoding, or any forwarded header: the defaults and upstream.forward_headers) is sent more than once; the connection is closed' },
  HTTP_CONTENT_ENCODING_UNSUPPORTED: { kind: 'request', status: 415, alert: false, bans: false, description: 'the request has a Content-Encoding other than identity: the body is checked as the bytes the backup gets, so it is never forwarded coded; the connection is closed' },
  HTTP_EXPECTATION_FAILED: { kind: 'request', status: 417, alert: false, bans: false, description: 'the request has an Expect field other than 100-continue; the connection is closed' },

  ROUTE_TARGET_INVALID: { kind: 'request', status: 400, alert: false, bans: true, description: 'the path is not in normal form ("..", ".", "//", encoded "/" or ".", bad characters) or not origin-form' },
  ROUTE_QUERY_NOT_ALLOWED: { kind: 'request', status: 400, alert: false, bans: false, description: 'the request has a query string; the replication API takes none, nor does ban administration on the admin listener' },
  ROUTE_NOT_FOUND: { kind: 'request', status: 404, alert: false, bans: false, description: 'no configured route has this path' },
  ROUTE_METHOD_NOT_ALLOWED: { kind: 'request', status: 405, alert: false, bans: false, description: 'the path is configured, for another method (also /bans and /bans/{key} on the admin listener: GET and DELETE only)' },

  AUTH_PEER_UNKNOWN: { kind: 'request', status: 403, alert: true, bans: true, description: 'the certificate is valid but names no configured peer' },
  AUTH_PEER_AMBIGUOUS: { kind: 'request', status: 403, alert: true, bans: true, description: 'the certificate matches more than one configured peer' },
  AUTH_CERT_PIN_MISMATCH: { kind: 'request', status: 403, alert: true, bans: true, description: "the certificate's SHA-256 is not among the peer's cert_sha256 pins" },
  AUTH_CERT_EXPIRED: { kind: 'request', status: 401, alert: true, bans: true, description: 'the client certificate (or an issuer of its chain) expired while its connection was open' },

  // Bearer secrets and JWTs (auth/bearer.ts, auth/jwt.ts), identity agreement.
  AUTH_TOKEN_IN_QUERY: { kind: 'request', status: 400, alert: true, bans: true, description: 'the query string carries a credential-like parameter (access_token, token, ...), a JWT, a signing key or a run with the shape of a bearer secret; refused before anything else reads it, and never logged (rotate that credential)' },
  AUTH_TOKEN_IN_PATH: { kind: 'request', status: 400, alert: true, bans: true, description: 'a path segment or a matrix parameter (;access_token=...) carries a credential: a JWT, a signing key, a credential parameter or a run with the shape of a bearer secret; refused before routing, and url.path is cut before it (rotate that credential)' },
  AUTH_TOKEN_IN_FRAGMENT: { kind: 'request', status: 400, alert: true, bans: true, description: 'the fragment (#access_token=...) carries a credential; refused before routing, and the fragment is never logged (rotate that credential)' },
  AUTH_CREDENTIAL_MISSING: { kind: 'request', status: 401, alert: true, bans: true, description: 'bearer or jwt is configured and the request has no Authorization header' },
  AUTH_CREDENTIAL_MALFORMED: { kind: 'request', status: 400, alert: true, bans: true, description: 'the Authorization header is not exactly one "Bearer <token>" (another scheme, repeated, or characters outside RFC 6750 b64token)' },
  AUTH_BEARER_INVALID: { kind: 'request', status: 401, alert: true, bans: true, description: 'the bearer secret matches none of the configured token files' },
  AUTH_BEARER_EXPIRED: { kind: 'request', status: 401, alert: true, bans: false, description: "the bearer secret is configured, and its token file's not_after has passed; the client gets the generic 401. Not counted toward a ban: only the holder of the real secret can present it (a POP that missed a rotation), and guessing gets AUTH_BEARER_INVALID" },
  AUTH_JWT_MALFORMED: { kind: 'request', status: 401, alert: true, bans: true, description: 'the JWT is not three base64url segments of JSON objects (or is larger than 8 KiB, or repeats a member name)' },
  AUTH_JWT_HEADER_REFUSED: { kind: 'request', status: 401, alert: true, bans: true, description: 'the JWT header is refused by policy: alg outside the asymmetric allow-list (none, HS*), crit, b64, cty (nested JWT), typ other than JWT, or embedded jwk/jku/x5u/x5c' },
  AUTH_JWT_KEY_UNKNOWN: { kind: 'request', status: 401, alert: true, bans: true, description: 'no configured key has the token\'s kid and algorithm' },
  AUTH_JWT_KEY_NOT_BOUND: { kind: 'request', status: 401, alert: true, bans: true, description: 'the token names a key that belongs to another POP or issuer than its sub / iss' },
  AUTH_JWT_SIGNATURE_INVALID: { kind: 'request', status: 401, alert: true, bans: true, description: 'the signature does not verify with the POP\'s key(s)' },
  AUTH_JWT_EXPIRED: { kind: 'request', status: 401, alert: true, bans: true, description: 'exp has passed (beyond auth.jwt.clock_tolerance)' },
  AUTH_JWT_NOT_YET_VALID: { kind: 'request', status: 401, alert: true, bans: true, description: 'nbf or iat lies in the future (beyond auth.jwt.clock_tolerance)' },
  AUTH_JWT_TOO_OLD: { kind: 'request', status: 401, alert: true, bans: true, description: 'iat is older than auth.jwt.max_token_age' },
  AUTH_JWT_CLAIM_INVALID: { kind: 'request', status: 401, alert: true, bans: true, description: 'a required claim (iss, aud, sub, exp, iat, jti, the replguard routes claim) is missing or ill-typed, or iss / aud is not the configured one' },
  AUTH_JWT_REVOKED: { kind: 'request', status: 401, alert: true, bans: true, description: 'the token\'s jti is listed in auth.jwt.revoked_ids_file' },
  AUTH_JWT_PEER_UNKNOWN: { kind: 'request', status: 403, alert: true, bans: true, description: 'the token\'s sub names no configured peer' },
  AUTH_JWT_CERT_BINDING_MISMATCH: { kind: 'request', status: 401, alert: true, bans: true, description: 'the cnf x5t#S256 claim does not equal the client certificate\'s thumbprint, or is missing while auth.jwt.require_cert_binding is on' },
  AUTH_ROUTE_NOT_ALLOWED: { kind: 'request', status: 403, alert: true, bans: true, description: 'the token\'s routes claim does not list this method and path' },
  AUTH_IDENTITY_MISMATCH: { kind: 'request', status: 403, alert: true, bans: true, description: 'the credentials name different POPs (e.g. the certificate and the token\'s sub)' },

  // Rate limits and bans (limits/).
  // Request framing that Node's parser lets through but a guard must refuse (limits/framing.ts).
  HTTP_FRAMING_INVALID: { kind: 'request', status: 400, alert: false, bans: true, description: 'ambiguous or unsupported message framing (Transfer-Encoding other than "chunked", Transfer-Encoding with Content-Length or on HTTP/1.0, duplicate Host); the connection is closed' },
  LIMIT_BANNED: { kind: 'request', status: 403, alert: false, bans: false, description: 'the client address or the POP is banned after repeated failures' },
  LIMIT_BANNED_CONNECTION: { kind: 'connection', status: 403, alert: false, bans: false, description: 'a banned client address was cut at accept (before any handshake), or a banned POP (from its certificate) at the TLS layer' },
  LIMIT_ADDRESS_RATE_EXCEEDED: { kind: 'request', status: 429, alert: false, bans: false, description: 'the client address sent more than limits.address_rate_per_minute requests (counted before authentication)' },
  LIMIT_RATE_EXCEEDED: { kind: 'request', status: 429, alert: false, bans: false, description: 'the POP sent more than limits.rate_per_minute requests (plus its burst allowance)' },
  LIMIT_STORE_UNAVAILABLE: { kind: 'request', status: 503, alert: true, bans: false, description: 'the shared store (Redis) holding bans and rate counters cannot be reached; refused, never let through' },
  LIMIT_BAN_STARTED: { kind: 'event', alert: true, bans: false, description: 'not a request outcome: the alert written when a POP or address is banned (limits.ban_after_failures within limits.failure_window)' },
  LIMIT_BAN_ENDED: { kind: 'event', alert: true, bans: false, description: 'not a request outcome: the alert written when a ban expires' },
  LIMIT_BAN_LIFTED: { kind: 'request', status: 200, alert: true, bans: false, description: 'not a request outcome: the alert written when an operator lifts a ban (DELETE /bans/{key} on the admin listener)' },
  LIMIT_BANS_LISTED: { kind: 'request', status: 200, alert: false, bans: false, description: 'not a request outcome: an operator listed the active bans (GET /bans on the admin listener)' },

  // Ban administration on the admin listener (service/admin-access.ts): who may list and lift bans.
  // None of these counts toward a ban: the admin listener has no ban check (see limits/bans.ts).
  ADMIN_CALLER_NOT_LOOPBACK: { kind: 'request', status: 403, alert: true, bans: false, description: 'ban administration (GET /bans, DELETE /bans/{key}) from an address outside 127.0.0.0/8 and ::1 while admin.token_file is not set: only loopback callers may administer bans' },
  ADMIN_TOKEN_MISSING: { kind: 'request', status: 401, alert: false, bans: false, description: 'admin.token_file is set and the ban-administration request has no Authorization header (required from every caller, loopback included)' },
  ADMIN_TOKEN_INVALID: { kind: 'request', status: 401, alert: true, bans: false, description: 'the ban-administration request\'s Authorization header is not "Bearer <the admin token>": a wrong secret, another scheme, or repeated' },


  BODY_TOO_LARGE: { kind: 'request', status: 413, alert: false, bans: false, description: 'the declared or streamed body exceeds limits.max_body_bytes' },
  BODY_INCOMPLETE: { kind: 'request', status: 400, alert: false, bans: false, description: 'the client closed the connection before sending the whole body' },

  // Signatures, freshness, replay, body contract (replay/).
  SIGNATURE_HEADERS_MISSING: { kind: 'request', status: 401, alert: true, bans: true, description: 'signature is an auth method and webhook-id, webhook-timestamp or webhook-signature is absent' },
  SIGNATURE_HEADER_REPEATED: { kind: 'request', status: 400, alert: false, bans: true, description: 'webhook-id, webhook-timestamp or webhook-signature is sent more than once' },
  SIGNATURE_ID_INVALID: { kind: 'request', status: 400, alert: false, bans: true, description: 'webhook-id is not 16 to 128 characters of [A-Za-z0-9_-]' },
  SIGNATURE_TIMESTAMP_INVALID: { kind: 'request', status: 400, alert: false, bans: true, description: 'webhook-timestamp is not 1 to 12 decimal digits' },
  SIGNATURE_TOO_MANY_ENTRIES: { kind: 'request', status: 400, alert: false, bans: true, description: 'webhook-signature has more space-separated entries than replay.max_signature_entries (default 8)' },
  SIGNATURE_ENTRY_MALFORMED: { kind: 'request', status: 400, alert: false, bans: true, description: 'a webhook-signature entry is not `version,<canonical padded base64>` (empty entry, no comma, bad base64)' },
  SIGNATURE_VERSION_UNKNOWN: { kind: 'request', status: 400, alert: false, bans: true, description: 'a webhook-signature entry has a version other than v1 (HMAC-SHA256) or v1a (Ed25519)' },
  SIGNATURE_LENGTH_INVALID: { kind: 'request', status: 400, alert: false, bans: true, description: 'a webhook-signature entry decodes to the wrong length (v1: 32 bytes, v1a: 64 bytes)' },
  SIGNATURE_MISMATCH: { kind: 'request', status: 401, alert: true, bans: true, description: "no signature entry verifies with a key of the authenticated POP (another POP's key is not tried)" },
  REPLAY_TIMESTAMP_STALE: { kind: 'request', status: 401, alert: false, bans: true, description: 'webhook-timestamp is older than replay.max_age' },
  REPLAY_TIMESTAMP_FUTURE: { kind: 'request', status: 401, alert: false, bans: true, description: 'webhook-timestamp is further ahead than replay.max_age' },
  REPLAY_NONCE_REUSED: { kind: 'request', status: 401, alert: true, bans: true, description: 'this POP already sent this webhook-id within the window: a replay' },
  REPLAY_STORE_FULL: { kind: 'request', status: 503, alert: true, bans: false, description: 'the nonce store holds replay.max_nonces live nonces; refused rather than evicting one' },
  REPLAY_STORE_UNAVAILABLE: { kind: 'request', status: 503, alert: true, bans: false, description: 'the nonce store did not answer (e.g. Redis down); refused, never forwarded unchecked' },
  BODY_CONTENT_TYPE_INVALID: { kind: 'request', status: 400, alert: false, bans: true, description: 'the content type is not application/json (optionally with charset=utf-8)' },
  BODY_NOT_UTF8: { kind: 'request', status: 400, alert: false, bans: true, description: 'the body is not valid UTF-8, or a JSON string escapes a lone surrogate' },
  BODY_NOT_JSON: { kind: 'request', status: 400, alert: false, bans: true, description: 'the body is not JSON (RFC 8259; a byte order mark is refused)' },
  BODY_NOT_OBJECT: { kind: 'request', status: 400, alert: false, bans: true, description: 'the JSON body is not an object' },
  BODY_JSON_TOO_DEEP: { kind: 'request', status: 400, alert: false, bans: true, description: 'the JSON body nests objects and arrays deeper than limits.max_json_depth (default 32); found over the raw bytes before anything is parsed' },
  BODY_JSON_TOO_MANY_KEYS: { kind: 'request', status: 400, alert: false, bans: true, description: 'an object in the JSON body has more keys than limits.max_json_keys_per_object (default 1000); found before anything is parsed' },
  BODY_JSON_TOO_MANY_VALUES: { kind: 'request', status: 413, alert: false, bans: false, description: 'the JSON body holds more values and keys than limits.max_json_values (default 200000); found before anything is parsed: split the batch' },
  BODY_DUPLICATE_KEY: { kind: 'request', status: 400, alert: false, bans: true, description: 'an object in the body repeats a key (compared after unescaping and case folding), at any depth' },
  BODY_SOURCE_POP_MISSING: { kind: 'request', status: 400, alert: false, bans: true, description: 'the body has no string source_pop' },
  BODY_SOURCE_POP_MISMATCH: { kind: 'request', status: 403, alert: true, bans: true, description: "the body's source_pop is not the authenticated POP" },
  BODY_TIMESTAMP_MISMATCH: { kind: 'request', status: 400, alert: false, bans: true, description: "the body's timestamp differs from webhook-timestamp" },
  BODY_NONCE_MISMATCH: { kind: 'request', status: 400, alert: false, bans: true, description: "the body's nonce differs from webhook-id" },
  BODY_ENTRIES_INVALID: { kind: 'request', status: 400, alert: false, bans: true, description: "the body's entries is present and not an array" },


  // The signer (role: primary, signer/): one audit event per attempt to reach the backup's
  // guard (event.action replication-send). Statuses are what the primary gets when the code
  // ends its request; a retried attempt sends nothing, and SIGNER_BACKUP_REFUSED relays the
  // guard's own status (which is logged).
  SIGNER_DELIVERED: { kind: 'signer', status: 200, alert: false, bans: false, description: "the backup's guard answered 2xx; the answer is relayed to the primary" },
  SIGNER_BACKUP_REFUSED: { kind: 'signer', status: 502, alert: true, bans: false, description: "the backup's guard refused the request (a status other than 2xx, 429, 502, 503, 504, e.g. 401 for a credential or signature it does not accept); its answer is relayed, never retried" },
  SIGNER_BACKUP_UNAVAILABLE: { kind: 'signer', status: 502, alert: false, bans: false, description: "the backup's guard answered 429, 502, 503 or 504: retried on the schedule; 502 to the primary when no retry is left" },
  SIGNER_BACKUP_UNREACHABLE: { kind: 'signer', status: 502, alert: false, bans: false, description: "the connection to the backup's guard failed or broke before an answer: retried on the schedule; 502 to the primary when no retry is left" },
  SIGNER_BACKUP_TIMEOUT: { kind: 'signer', status: 504, alert: false, bans: false, description: "no answer within backup.timeout: retried on the schedule; 504 to the primary when no retry is left" },
  SIGNER_BACKUP_CERT_INVALID: { kind: 'signer', status: 502, alert: true, bans: false, description: "the backup's certificate does not chain to backup.ca_file, does not carry backup.server_name (or the URL's host), or is outside its validity: never retried" },
  SIGNER_BACKUP_PIN_MISMATCH: { kind: 'signer', status: 502, alert: true, bans: false, description: "the backup's certificate is valid but its SHA-256 is not among backup.pin_sha256: never retried" },
  SIGNER_CREDENTIAL_EXPIRED: { kind: 'signer', status: 503, alert: true, bans: false, description: "the signer's own credential is past its end (credentials.token_file's not_after, or credentials.jwt_token_file's exp): nothing is sent until a new one is loaded (SIGHUP or the file watch)" },
  SIGNER_PRIMARY_GONE: { kind: 'signer', status: 502, alert: false, bans: false, description: 'the primary closed its connection while the signer waited to retry: no further attempt (nobody would get the answer, and a late delivery could overtake a newer batch)' },

  UPSTREAM_UNAVAILABLE: { kind: 'request', status: 502, alert: false, bans: false, description: 'the upstream refused or dropped the connection, or answered malformed HTTP' },
  UPSTREAM_TIMEOUT: { kind: 'request', status: 504, alert: false, bans: false, description: 'the upstream did not answer within upstream.timeout' },
  UPSTREAM_ABORTED: { kind: 'request', status: 502, alert: false, bans: false, description: 'the upstream broke off its response after it had started' },

  // Each batch once (upstream.deduplicate, proxy/delivery.ts): what the guard recorded of a
  // batch decides whether a retry of it is forwarded.
  DELIVERY_DUPLICATE: { kind: 'request', status: 200, alert: false, bans: false, description: "a retry of a batch the backup already answered: the recorded answer again (x-replguard-duplicate: true), not forwarded; its status is in http.response.status_code" },
  DELIVERY_IN_FLIGHT: { kind: 'request', status: 409, alert: false, bans: false, description: 'a retry of a batch whose first delivery is still waiting for the backup: refused, never a second copy' },
  DELIVERY_OUTCOME_UNKNOWN: { kind: 'request', status: 409, alert: true, bans: false, description: 'a retry of a batch the backup may or may not have applied (its delivery timed out or broke off after it was sent): refused rather than delivered twice; check the backup' },
  DELIVERY_STORE_FULL: { kind: 'request', status: 503, alert: true, bans: false, description: 'the memory store holds upstream.deduplicate.max_batches live batches; refused rather than forgetting one' },
  DELIVERY_STORE_UNAVAILABLE: { kind: 'request', status: 503, alert: true, bans: false, description: 'the delivery store did not answer (e.g. Redis down); refused, never forwarded unrecorded' },

  // Batch numbers (replay.sequence, replay/sequence-stage.ts): the signer's epoch and each
  // batch's number, signed in the webhook-id; what the guard forwarded of each epoch.
  SEQUENCE_MISSING: { kind: 'request', status: 400, alert: false, bans: false, description: 'replay.sequence.required is set and the signed webhook-id carries no batch number (rs1_<epoch>_<n>), or it has the rs1_ form but no valid epoch and number (past 15 digits): refused, never forwarded untracked' },
  SEQUENCE_OUT_OF_ORDER: { kind: 'request', status: 503, alert: false, bans: false, description: 'replay.sequence.order is refuse and a lower number of this batch\'s epoch has not been forwarded yet: refused with Retry-After (the signer retries), never forwarded ahead of it' },
  SEQUENCE_REFUSED: { kind: 'request', status: 409, alert: true, bans: false, description: 'replay.sequence.order is refuse and this batch number was forwarded before (SEQUENCE_DUPLICATE) or is below the lowest tracked (SEQUENCE_BELOW_LOWEST): never forwarded again' },
  SEQUENCE_STORE_UNAVAILABLE: { kind: 'request', status: 503, alert: true, bans: false, description: 'the store of batch numbers did not answer (e.g. Redis down), kept changing under other replicas\' updates, or holds a state this guard cannot read (another version\'s, a corrupted write): refused, never forwarded untracked' },
  SEQUENCE_NEW_EPOCH: { kind: 'event', alert: false, bans: false, description: 'the first batch of a signer epoch (a signer start): replguard.sequence names the epoch and the first number seen, which is 1 unless batches before it never reached this guard or the guard forgot the epoch' },
  SEQUENCE_GAP: { kind: 'event', alert: true, bans: false, description: 'batch numbers of an epoch were not forwarded within replay.sequence.gap_window after a higher one (replguard.gap: from, to, count): the signer\'s audit explains them (it failed to deliver) or something between the two dropped them' },
  SEQUENCE_DUPLICATE: { kind: 'event', alert: true, bans: false, description: 'a batch number already forwarded arrived again under another webhook-id (replguard.sequence); forwarded with order: report, refused (SEQUENCE_REFUSED) with refuse' },
  SEQUENCE_BELOW_LOWEST: { kind: 'event', alert: true, bans: false, description: 'a batch number more than replay.sequence.max_tracked below the epoch\'s highest arrived: the guard no longer knows whether it was forwarded; forwarded with order: report, refused with refuse' },

  SHUTTING_DOWN: { kind: 'signer', status: 503, alert: false, bans: false, description: 'the signer is draining: a new request from the primary is refused (the guard finishes in-flight work instead)' },
  // Reloads of certificates, keys and tokens (reload/source.ts, audit/event.ts reloadEvent).
  CONFIG_RELOADED: { kind: 'event', alert: false, bans: false, description: 'new credential material was loaded and is in force' },
  CONFIG_RELOAD_FAILED: { kind: 'event', alert: true, bans: false, description: 'new material was refused; the previous material stays in force' },
  CREDENTIAL_REMOVED: { kind: 'event', alert: true, bans: false, description: 'a reload took credential material out of force (a file deleted or emptied): its POP is refused with it from now on' },

  // The signed POP registry (registry/, docs/control-plane.md): this process's role is confirmed
  // by the control plane; while it is not, every request is refused, never served in a wrong role.
  REGISTRY_ROLE_MISMATCH: { kind: 'request', status: 503, alert: true, bans: false, description: 'the registry in force lists this pop_id with another role than the config\'s: every request is refused (readyz false) until a registry confirms the role' },
  REGISTRY_POP_UNLISTED: { kind: 'request', status: 503, alert: true, bans: false, description: 'the registry in force does not list this pop_id: every request is refused (readyz false) until a registry lists it' },
  REGISTRY_EXPIRED: { kind: 'request', status: 503, alert: true, bans: false, description: 'the registry in force is past its exp plus control_plane.expiry_grace and no newer one was accepted: every request is refused (readyz false)' },
  REGISTRY_BACKUP_NOT_LISTED: { kind: 'signer', status: 503, alert: true, bans: false, description: 'the registry in force does not list backup.id among this primary\'s replicates_to: the signer sends nothing (readyz false) until a registry lists it' },
  REGISTRY_UPDATED: { kind: 'event', alert: false, bans: false, description: 'a newer registry was verified and is in force (replguard.registry: serial, source, POPs added, removed and changed)' },
  REGISTRY_REFUSED: { kind: 'event', alert: true, bans: false, description: 'a registry document was refused (unknown key, bad signature, malformed, rollback, reused serial, expired, unreadable): the one in force is kept' },
  REGISTRY_SOURCE_FAILED: { kind: 'event', alert: true, bans: false, description: 'the registry source gave no document (HQ unreachable, a TLS failure, a bad status, a timeout, an answer too large: replguard.registry.refusal): the registry in force is kept until its exp plus control_plane.expiry_grace' },
  REGISTRY_CACHE_WRITE_FAILED: { kind: 'event', alert: true, bans: false, description: 'control_plane.cache_file cannot be written: the registry in force serves, but a restart would not find it (nor its serial as the rollback floor); retried at every poll' },
  REGISTRY_EXPIRING: { kind: 'event', alert: true, bans: false, description: 'the registry in force expires within control_plane.expiry_warning, or is past exp within control_plane.expiry_grace: HQ must issue a new one' },
  REGISTRY_SERVING_STOPPED: { kind: 'event', alert: true, bans: false, description: 'this process stopped serving because of the registry (its reason code in replguard.registry.state)' },
  REGISTRY_SERVING_RESUMED: { kind: 'event', alert: true, bans: false, description: 'a registry confirms this process\'s role again: it serves again' },
  // Peers from the registry (control_plane.peers, registry/peers.ts).
  REGISTRY_PEERS_CHANGED: { kind: 'event', alert: false, bans: false, description: 'the guard\'s peers from the registry changed and the new peer set is in force (replguard.registry: the peer ids added, removed and changed, the conflicts left out)' },
  REGISTRY_PEERS_NOT_APPLIED: { kind: 'event', alert: true, bans: false, description: 'the peer set of a new registry could not be put in force (a credential file of the config failed to load): the POPs it removes or changes are refused until it is' },
  REGISTRY_PEER_NOT_CURRENT: { kind: 'request', status: 503, alert: true, bans: false, description: 'the registry removed or changed this POP, and the guard has not been able to put the new peer set in force yet (REGISTRY_PEERS_NOT_APPLIED): refused meanwhile, never admitted under the old entry' },

  INTERNAL_PREREQUISITE_MISSING: { kind: 'request', status: 500, alert: true, bans: false, description: 'a stage found what an earlier stage provides missing (a pipeline-order bug: compose() refuses such an order at start-up, so this is a backstop); never counted toward a ban' },
  INTERNAL: { kind: 'request', status: 500, alert: true, bans: false, description: 'an unexpected error; its stack is in the operational log' },
} as const satisfies Record<string, ReasonEntry>;

interface ReasonEntry {
  readonly kind: 'request' | 'connection' | 'event' | 'signer';
  readonly status?: number;
  readonly alert: boolean;
  readonly bans: boolean;
  readonly description: string;
}

/** Every code of the table. */
export type Code = keyof typeof REASONS;

/** The codes that end a request, a connection or a signer attempt: every kind but `event`, each with a status. */
export type Reason = { [K in Code]: (typeof REASONS)[K] extends { status: number } ? K : never }[Code];

/** The codes of events that are not tied to a request (bans starting and ending, reloads). */
export type EventReason = Exclude<Code, Reason>;

/** The status sent for a code. */
export function statusOf(reason: Reason): number {
  return REASONS[reason].status;
}

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

  /** Further response headers (fixed names and values, never client text). */
  readonly headers: Readonly<Record<string, string>> | undefined;

  /** What the audit log says beyond the reason code (never sent to the client). */
  readonly detail: string | undefined;

  constructor(reason: Reason, detail?: string, options: { retryAfter?: number; closeConnection?: boolean; allow?: readonly string[]; headers?: Readonly<Record<string, string>> } = {}) {
    super(detail ?? reason);
    this.detail = detail;
    this.name = 'Rejection';
    this.reason = reason;
    this.status = statusOf(reason);
    this.retryAfter = options.retryAfter;
    this.closeConnection = options.closeConnection ?? false;
    this.allow = options.allow;
    this.headers = options.headers;
  }
}
