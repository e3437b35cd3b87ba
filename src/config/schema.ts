/**
 * The guard's (role: backup) config schema: the single source of truth for its keys, types and
 * defaults (the signer's is config/primary-schema.ts).
 * README's "Configuration reference" documents every key listed here (a test checks the parity).
 *
 * Unknown keys are errors (a typo in a security config must not be ignored) and nothing is
 * coerced silently: `port: "8443"` is a type error, not a number.
 */
import { z } from 'zod';
import { adminListener, duration, filePath, listenerLimits, popIdSchema, port, sha256Pin, size } from './fields.ts';

/** Which certificate field names the peer. Exactly one is set. */
const certSelector = z
  .strictObject({
    /** The subject common name, exactly. */
    cn: z.string().min(1).optional(),
    /** A DNS subjectAltName, compared case-insensitively. */
    dns_san: z.string().min(1).optional(),
    /** A URI subjectAltName, exactly (e.g. a SPIFFE ID `spiffe://example.org/pop/calgary-01`). */
    uri_san: z.string().min(1).optional(),
  })
  .refine((c) => [c.cn, c.dns_san, c.uri_san].filter((v) => v !== undefined).length === 1, {
    message: 'name exactly one of cn, dns_san or uri_san',
  });

/**
 * The one name a certificate selector matches, as `field=value` (a DNS SAN lower-cased, as the
 * peer index compares it): two peers with one key would both be named by one certificate.
 */
export function certSelectorKey(cert: { readonly cn?: string | undefined; readonly dns_san?: string | undefined; readonly uri_san?: string | undefined }): string {
  if (cert.cn !== undefined) return `cn=${cert.cn}`;
  if (cert.dns_san !== undefined) return `dns_san=${cert.dns_san.toLowerCase()}`;
  return `uri_san=${cert.uri_san}`;
}

const peer = z.strictObject({
  /** The POP id this peer authenticates as (e.g. `calgary-01`). */
  id: popIdSchema,
  /** How the peer's client certificate names it. */
  cert: certSelector,
  /** Optional SHA-256 pins of the peer's certificate, checked on top of chain validation. */
  cert_sha256: z.array(sha256Pin).default([]),
  /**
   * Files holding this peer's bearer secrets, one secret per file (a trailing newline is
   * ignored). Every listed file is valid at once, so a secret rotates with overlap; an empty
   * file is a retired slot. Secrets shorter than 32 bytes or under 128 bits by a conservative
   * estimate (crypto/secret-strength.ts) are refused at start-up and at reload (the old set stays in force). Files must not be readable by others.
   * Default: none (the peer cannot authenticate with `bearer`).
   */
  token_files: z.array(filePath).default([]),
  /**
   * Files holding the keys that verify this peer's request signatures (Standard Webhooks), one
   * key per file: an HMAC secret `whsec_<base64>` (at least 32 bytes of key material, file not
   * readable by others) for `v1`, or an Ed25519 public key (`whpk_<base64>` or PEM) for `v1a`.
   * Several at once during a rotation; one valid signature entry suffices. Read and checked at
   * load time. Required (at least one) when `auth.methods` lists `signature`; an error otherwise.
   */
  signing_keys: z.array(filePath).default([]),
});

const route = z.strictObject({
  method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']),
  path: z.string().min(1),
});

/** `replay:` (see the `replay` key below). */
const replaySchema = z.strictObject({
  /**
   * How far `webhook-timestamp` may be from the guard's clock, in both directions (default
   * 300s, 1s to 24h). Older or newer is refused (401). Nonces are kept for twice this long.
   */
  max_age: duration('300s').default(300_000).refine((ms) => ms >= 1000 && ms <= 86_400_000, 'max_age must be between 1s and 24h'),
  /**
   * Most nonces (webhook-ids) the store holds at once, all POPs together (default 20000; the
   * sizing is in docs/replay.md). When it is full of live nonces a new request is refused with
   * 503 (REPLAY_STORE_FULL): a live nonce is never evicted.
   */
  max_nonces: z.number().int().min(1).max(10_000_000).default(20_000),
  /**
   * Most entries a request's `webhook-signature` may carry (default 8, 1 to 8). Each entry costs
   * one check per key of the POP of its version, a pass over the whole body, so this bounds a
   * request's verification work at entries x that POP's keys. More entries are refused with 400
   * (SIGNATURE_TOO_MANY_ENTRIES) before any is checked. A rotation needs 2; 1 when every primary
   * signs with one key. (8 is MAX_SIGNATURE_ENTRIES of src/replay/signature.ts; a test keeps them equal.)
   */
  max_signature_entries: z.number().int().min(1).max(8).default(8),
  /**
   * Batch numbers (docs/replay.md#batch-sequence): the replguard signer carries its epoch (random
   * at each start) and each batch's number in the signed webhook-id (`rs1_<epoch>_<n>`). The
   * guard tracks, per POP and epoch, which numbers it forwarded, in the shared store (`store:`,
   * so replicas agree), and writes SEQUENCE_GAP, SEQUENCE_DUPLICATE, SEQUENCE_BELOW_LOWEST and
   * SEQUENCE_NEW_EPOCH events. Left out: not tracked.
   */
  sequence: z
    .strictObject({
      /**
       * `report` (default): every batch that passed the checks is forwarded, findings are only
       * reported. `refuse`: a batch is forwarded only once every lower number of its epoch was
       * (503 SEQUENCE_OUT_OF_ORDER otherwise, which the signer retries), and a number forwarded
       * before, or below the lowest tracked, is refused (409 SEQUENCE_REFUSED).
       */
      order: z.enum(['report', 'refuse']).default('report'),
      /**
       * A missing number is reported as a gap when it has not arrived this long after a higher
       * one, or after its own claim was withdrawn (default 15m, 1s to 1h). Keep it above the
       * signer's whole retry schedule (781 s with the default retry.max_retries, plus each
       * attempt's timeout): a batch the signer is still retrying is not lost yet.
       */
      gap_window: duration('15m').default(900_000).refine((ms) => ms >= 1000 && ms <= 3_600_000, 'gap_window must be between 1s and 1h'),
      /** Numbers tracked per epoch below its highest (default 4096, 16 to 100000); older ones are forgotten (a missing one is reported as a gap then). */
      max_tracked: z.number().int().min(16).max(100_000).default(4096),
      /** How long an epoch is remembered after its last batch (default 24h, 1m to 30d). */
      retention: duration('24h').default(86_400_000).refine((ms) => ms >= 60_000 && ms <= 30 * 86_400_000, 'retention must be between 1m and 30d'),
      /** Refuse (400 SEQUENCE_MISSING) a signed request whose webhook-id carries no batch number (another Standard Webhooks signer). Default false. */
      required: z.boolean().default(false),
    })
    .optional(),
});

export const AUTH_METHODS = ['mtls', 'bearer', 'jwt', 'signature'] as const;

/** The JWS algorithms a JWT may be signed with. HS* and none are never accepted. */
export const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

/** One JWT verification key source: a key file or a folder of them, bound to one POP or one issuer. */
const jwtPublicKey = z
  .strictObject({
    /**
     * A PEM file (one or more `PUBLIC KEY` blocks), a JWK or JWK Set file (`.json`), or a folder
     * of such files (names starting with "." are skipped, as Kubernetes' `..data`).
     */
    path: filePath,
    /** The one algorithm this key verifies; a key of another type is refused at load. */
    alg: z.enum(JWT_ALGORITHMS),
    /** The POP this key signs for: tokens verified with it must have `sub` equal to this id. */
    pop: popIdSchema.optional(),
    /** The issuer this key belongs to (an external provider): tokens verified with it must have this `iss`; any configured peer may be their `sub`. */
    issuer: z.string().min(1).optional(),
  })
  .refine((k) => (k.pop === undefined) !== (k.issuer === undefined), { message: 'bind the key to exactly one of pop or issuer' });

const jwtConfig = z.strictObject({
  /** Verification keys, each bound to a POP or an issuer. At least one. */
  public_keys: z.array(jwtPublicKey).min(1, 'list at least one key, e.g. { path: keys/calgary-01.pub, alg: ES256, pop: calgary-01 }'),
  /** Accepted `iss` values (a string or a list). Default `replguard` (what `make-jwt` writes). */
  issuer: z
    .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
    .default('replguard')
    .transform((v) => (Array.isArray(v) ? v : [v])),
  /** The `aud` a token must name. Default: this `pop_id`. */
  audience: z.string().min(1).optional(),
  /** Revoked token ids (`jti`), one per line; `#` starts a comment. Reloaded like the keys. Default: none. */
  revoked_ids_file: filePath.optional(),
  /** Oldest acceptable token, from its `iat`. Default 1h; an older token is refused (401). */
  max_token_age: duration('1h').default(3_600_000),
  /** Allowed clock skew for `exp`, `nbf` and `iat`. Default 30s. */
  clock_tolerance: duration('30s').default(30_000),
  /**
   * Require the RFC 8705 `cnf: {"x5t#S256": ...}` claim, equal to the client certificate's
   * SHA-256 thumbprint. Default false: the claim is checked when present. Needs mtls.
   */
  require_cert_binding: z.boolean().default(false),
  /** Verified tokens kept (until they expire) so a busy POP does not pay a signature check per request. Default 10000; 0 turns the cache off. */
  cache_max_entries: z.number().int().min(0).max(1_000_000).default(10_000),
});

/**
 * `control_plane:` the signed POP registry of the operator's control plane (docs/control-plane.md).
 * When set, this process runs only while a registry signed by one of `keys` lists its `pop_id`
 * with its `role`: at start-up a missing, refused or mismatching registry is a configuration
 * error (exit 2); at run time a verified registry that says otherwise, or the registry in force
 * running past its expiry plus `expiry_grace`, stops serving (readyz false, every request 503).
 * Restart-only on the guard. Default: none (roles come from this file alone).
 */
export const controlPlaneSchema = z.strictObject({
  /**
   * HQ's public keys (PEM `PUBLIC KEY` or JWK files), Ed25519 (EdDSA) or P-256 (ES256): a
   * registry must be signed by one of them, named by the JWS `kid` (the JWK's `kid`, else the
   * key's RFC 7638 thumbprint). Several at once so HQ can rotate its key. At least one.
   */
  keys: z.array(filePath).min(1, 'list at least one HQ public key file (replguard registry keygen writes one)').max(16),
  /**
   * The registry document (a compact JWS, as `replguard registry sign` writes it), e.g. from
   * GitOps or a ConfigMap mount. Re-read every `poll_interval` and on SIGHUP; a new document
   * that is refused (unknown key, bad signature, older serial, expired) keeps the one in force.
   * Exactly one of `registry_file` and `registry_url`.
   */
  registry_file: filePath.optional(),
  /**
   * HQ's registry endpoint, an `https://` URL polled every `poll_interval` (and on SIGHUP) over
   * TLS 1.3 verified against `tls.ca_file`, with this POP's client certificate (`tls.cert_file`)
   * and a conditional request (`If-None-Match`: a 304 keeps the copy in force). No redirect is
   * followed; an answer over 8 MiB, a status other than 200 or 304, a TLS failure or no answer
   * within `timeout` is audited (REGISTRY_SOURCE_FAILED) and keeps the copy in force. Needs
   * `tls` and `cache_file`. Exactly one of `registry_file` and `registry_url`.
   */
  registry_url: z.string().min(1).optional(),
  /** How this POP reaches `registry_url` (required with it). */
  tls: z
    .strictObject({
      /** The CA bundle (PEM) HQ's server certificate must chain to. */
      ca_file: filePath,
      /** This POP's client certificate chain (PEM), which HQ may require. */
      cert_file: filePath,
      /** Its private key (PEM), not readable by others. */
      key_file: filePath,
      /** The name HQ's certificate must carry (and the SNI). Default: the URL's host. */
      server_name: z.string().min(1).optional(),
    })
    .optional(),
  /** Time allowed for one request to `registry_url`, connection to last byte. Default 10s; 1s to 5m. */
  timeout: duration('10s').default(10_000).refine((ms) => ms >= 1000 && ms <= 300_000, 'timeout must be between 1s and 5m'),
  /**
   * The last good registry, kept on disk (written atomically, mode 0600, with HQ's ETag). Read at
   * start-up as untrusted input (verified like any document): it serves while HQ is unreachable,
   * until its `exp`, and its serial is the floor below which a document from HQ or a file is
   * refused after a restart (REGISTRY_ROLLBACK), even once it expired. Required with
   * `registry_url`; optional with `registry_file`. Its folder must exist and be writable by this
   * user only.
   */
  cache_file: filePath.optional(),
  /** How often the registry source is read again. Default 30s; 1s to 1h. */
  poll_interval: duration('30s').default(30_000).refine((ms) => ms >= 1000 && ms <= 3_600_000, 'poll_interval must be between 1s and 1h'),
  /**
   * How long the registry in force still counts after its `exp` (alert events meanwhile); after
   * it, this process stops serving until a newer registry arrives. Default 0s: fails closed at `exp`.
   */
  expiry_grace: duration('1h').default(0).refine((ms) => ms <= 7 * 86_400_000, 'expiry_grace is at most 7d'),
  /** How long before the registry's `exp` an alert (REGISTRY_EXPIRING) is written at every poll. Default 24h. */
  expiry_warning: duration('24h').default(86_400_000),
});
export type ControlPlaneConfig = z.output<typeof controlPlaneSchema>;

/** What `control_plane.peers` does with the registry's POPs (docs/control-plane.md, "Peers from the registry"). */
export const REGISTRY_PEER_MODES = ['off', 'merge', 'replace'] as const;
export type RegistryPeerMode = (typeof REGISTRY_PEER_MODES)[number];

/** The guard's `control_plane:`: the shared section plus where its authorised peers come from. */
export const guardControlPlaneSchema = controlPlaneSchema.extend({
  /**
   * Whether the registry's primaries that replicate to this guard (`replicates_to` lists
   * `pop_id`) are authorised peers, with the certificate identity, pins and Ed25519 signature
   * keys the registry gives them. `off` (default): peers come from `peers` alone. `merge`:
   * `peers` plus the registry's; a POP id (or certificate name) that `peers` already has keeps
   * the config's entry, and the registry's is reported as a conflict. `replace`: the registry's
   * only (`peers` must then be empty). A registry change applies without a restart: a POP added
   * is admitted, a POP removed is refused from its next request, on open connections too.
   */
  peers: z.enum(REGISTRY_PEER_MODES).default('off'),
});
export type GuardControlPlaneConfig = z.output<typeof guardControlPlaneSchema>;

export const configSchema = z.strictObject({
  /** This POP's id; the default JWT audience. */
  pop_id: popIdSchema,
  /** `backup` runs the guard (ingress); `primary` runs the signer (egress). Config file only. */
  role: z.enum(['backup', 'primary']),
  listen: z
    .strictObject({
      host: z.string().min(1).default('0.0.0.0'),
      port: port.default(8443),
    })
    .prefault({}),
  tls: z.strictObject({
    /** Server certificate chain (PEM). */
    cert_file: filePath,
    /** Server private key (PEM), not readable by others. */
    key_file: filePath,
    /** CA bundle that client certificates must chain to (PEM). */
    client_ca_file: filePath,
    /** Optional CRL (PEM) of revoked client certificates. */
    crl_file: filePath.optional(),
    /** TLSv1.3 by default; TLSv1.2 only when set explicitly. */
    min_version: z.enum(['TLSv1.3', 'TLSv1.2']).default('TLSv1.3'),
  }),
  upstream: z.strictObject({
    /** The backup service, plain HTTP on loopback. */
    url: z.string().min(1),
    /** Time allowed for the upstream to answer (504 after it). */
    timeout: duration('30s').default(30_000),
    /** Allow a plain-HTTP upstream that is not on loopback. Risky: traffic leaves the host unencrypted. */
    unsafe_allow_plaintext_upstream_host: z.boolean().default(false),
    /**
     * Client headers forwarded besides the default allow-list (accept, content-type,
     * user-agent, x-request-id); every other client header is dropped. Names are
     * case-insensitive (stored lower-case). Refused: names that are not RFC 9110 tokens, contain
     * "_", hop-by-hop names, the guard's own headers and anything that differs from them only by
     * case or "_"/"-", and credential, identity, routing or override headers. Default: none.
     */
    forward_headers: z.array(z.string().transform((name) => name.toLowerCase())).default([]),
    /**
     * Relay the upstream's own body (and its allow-listed headers) on a 5xx answer. Default
     * false: the client gets the same status with the guard's generic body, and the upstream's
     * status and body size go to the audit event (a backup's error page can carry a stack trace
     * or a database URL).
     */
    relay_error_bodies: z.boolean().default(false),
    /**
     * Each batch reaches the backup once (docs/signer.md#each-batch-reaches-the-backup-once). When set, the guard
     * records per POP and batch (the `webhook-id` of a signed request, else the body's SHA-256)
     * what it forwarded and what the backup answered: a retry of an answered batch gets that
     * answer again (`x-replguard-duplicate: true`, DELIVERY_DUPLICATE) and is not forwarded; a
     * retry while the first is in flight, or after an outcome the guard cannot know (an upstream
     * timeout), is refused with 409. Records live in the shared store (`store:`), so replicas on
     * Redis agree. Default: off (every request that passes the checks is forwarded).
     */
    deduplicate: z
      .strictObject({
        /**
         * How long a batch is remembered, from its first delivery. Default 1h: longer than the
         * signer's whole retry schedule (docs/signer.md), and never shorter than the nonce
         * window (2 x replay.max_age).
         */
        window: duration('1h').default(3_600_000).refine((ms) => ms >= 1000 && ms <= 7 * 86_400_000, 'window must be between 1s and 7d'),
        /** Most batches remembered at once in the memory store (default 10000); full, a new batch is refused with 503 (DELIVERY_STORE_FULL), never one forgotten. */
        max_batches: z.number().int().min(1).max(10_000_000).default(10_000),
        /** Largest backup answer body kept to answer a retry with (default 4KiB, at most 64KiB); a larger one is kept as its status with an empty body. */
        max_answer_bytes: size('4KiB').default(4096).refine((b) => b >= 0 && b <= 65_536, 'max_answer_bytes must be at most 64KiB'),
      })
      .optional(),
  }),
  /** The method + path pairs served; anything else is 404 or 405. */
  routes: z.array(route).min(1, 'at least one route is needed, e.g. { method: POST, path: /api/replication/apply }'),
  auth: z
    .strictObject({
      /**
       * Credentials every request must carry. `bearer` and `jwt` share the one
       * `Authorization: Bearer` header: listed together, a request carries either (a value
       * with a "." is a JWT, anything else a shared secret; see docs/credentials.md).
       */
      methods: z.array(z.enum(AUTH_METHODS)).min(1).default(['mtls']),
      /**
       * How often bearer token files, JWT keys, the revoked-id list and the TLS material
       * (tls.cert_file, key_file, client_ca_file, crl_file) are re-read as a fallback to SIGHUP
       * and file-change events. Default 60s; 0 turns the timer off. New material that fails its
       * checks keeps the material in force (operational error) and is retried next time.
       */
      reload_interval: duration('60s').default(60_000),
      /** JWT verification (when `jwt` is in methods). */
      jwt: jwtConfig.optional(),
    })
    .prefault({}),
  /** The authorised source POPs. An empty list admits nobody: fails closed. */
  peers: z.array(peer).default([]),
  /** The signed POP registry that confirms this guard's role and may name its peers (see `guardControlPlaneSchema`). Default: none. */
  control_plane: guardControlPlaneSchema.optional(),
  /**
   * Freshness and replay protection of signed requests; active exactly when `auth.methods`
   * lists `signature` (an unsigned timestamp or nonce can be forged, so writing this section
   * without signatures is a config error). Defaults: REPLAY_DEFAULTS.
   */
  replay: replaySchema.optional(),
  admin: z
    .strictObject({
      ...adminListener,
      /**
       * File holding the token for ban administration (`GET /bans`, `DELETE /bans/{key}`), sent as
       * `Authorization: Bearer <token>`. Checked like every secret file at start-up and at reload
       * (not readable by others, at least 32 bytes and 128 bits; `replguard gen-token` makes
       * one); re-read on SIGHUP, on a change in its folder and every `auth.reload_interval`; a bad
       * new file keeps the token in force. When set, the token is required from EVERY caller,
       * loopback included (a pod's containers share its loopback). Default: none, and then ban
       * administration answers loopback callers only (127.0.0.0/8, ::1). Health and metrics never
       * need it.
       */
      token_file: filePath.optional(),
    })
    .prefault({}),
  limits: z
    .strictObject({
      ...listenerLimits,
      /**
       * Time a client has from its TCP connection to the end of its TLS handshake; after it the
       * connection is cut (TLS_HANDSHAKE_TIMEOUT). Enforced by the guard itself on both runtimes.
       * Default 10s.
       */
      handshake_timeout: duration('10s').default(10_000),
      /**
       * Most connections that have not authenticated yet (accepted, handshake in progress, or open
       * without a verified certificate or a verified request), all addresses together; further
       * ones are cut at accept (LIMIT_CONNECTIONS_EXCEEDED). The rest of `max_connections` stays
       * for connections that authenticated: an unauthenticated flood cannot take it. Default: half
       * of `max_connections` (at least 1).
       */
      max_unauthenticated_connections: z.number().int().min(1).optional(),
      /**
       * Most unauthenticated connections from one client address (IPv6: per /64); further ones are
       * cut at accept (LIMIT_ADDRESS_CONNECTIONS_EXCEEDED). Default 32 (a POP's connection pool
       * opening at once), and at most half of `max_unauthenticated_connections`, so that one
       * address can never take the whole unauthenticated pool.
       */
      max_unauthenticated_per_address: z.number().int().min(1).optional(),
      /**
       * Requests per authenticated POP per minute (fixed one-minute windows); over it, 429 with
       * Retry-After. Default 60, the review's figure.
       */
      rate_per_minute: z.number().int().min(1).default(60),
      /**
       * Extra requests a POP may send beyond `rate_per_minute`, drawn from an allowance that refills
       * every `rate_burst_window` (catch-up after an outage). Default 0: no burst.
       */
      rate_burst: z.number().int().min(0).default(0),
      /** How often the burst allowance refills. Default 10m. */
      rate_burst_window: duration('10m').default(600_000),
      /**
       * Requests per client address per minute, counted before authentication so that an
       * unauthenticated flood stays cheap; over it, 429. IPv6 addresses count per /64. Default 600.
       */
      address_rate_per_minute: z.number().int().min(1).default(600),
      /**
       * Authentication, signature, replay or malformed-request failures within `failure_window`
       * that ban the POP (when known) and the client address for `ban_duration`. Default 10.
       */
      ban_after_failures: z.number().int().min(1).default(10),
      /** The window failures are counted in; it starts at the first failure. Default 10m. */
      failure_window: duration('10m').default(600_000),
      /** How long a ban lasts; a banned POP or address is refused at once (handshake or 403). Default 1h. */
      ban_duration: duration('1h').default(3_600_000),
      /**
       * Most client addresses whose counters and bans the memory store keeps (least recently seen
       * evicted first). Authenticated POPs are kept apart and never evicted. Default 50000.
       */
      max_tracked_addresses: z.number().int().min(100).default(50_000),
    })
    .prefault({}),
  /**
   * Where nonces, rate counters and bans live. `memory` (default) is per process; `redis` shares
   * them between guard replicas in front of one backup. Redis unreachable: requests are refused
   * with 503 and /readyz turns false until it is back (fails closed).
   */
  store: z
    .strictObject({
      type: z.enum(['memory', 'redis']).default('memory'),
      /** `redis://host:port/db` or `rediss://` (TLS); no password in it (use password_file). */
      url: z.string().min(1).optional(),
      /** File holding the Redis password (AUTH; surrounding whitespace removed), not readable by others, at least 128 bits by the secret-strength estimate. */
      password_file: filePath.optional(),
      /** CA bundle (PEM) that a `rediss://` server certificate must chain to; default: the system CAs. */
      ca_file: filePath.optional(),
      /** Prefix of every Redis key, so that several deployments can share one Redis. Default `replguard:`. */
      key_prefix: z.string().regex(/^[A-Za-z0-9:._-]{1,64}$/, 'a key prefix is 1 to 64 letters, digits, ":", ".", "_" or "-"').default('replguard:'),
      /** A Redis command slower than this counts as Redis unavailable (503). Default 1s. */
      command_timeout: duration('1s').default(1_000),
    })
    .prefault({}),
  /** How long SIGTERM waits for in-flight requests before closing them. */
  shutdown_timeout: duration('25s').default(25_000),
  log: z
    .strictObject({
      /** Operational log level (the audit trail is always written). */
      level: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
    })
    .prefault({}),
  /**
   * Where the audit trail (one NDJSON event per request, docs/audit.md) goes. At least one
   * destination is required: a config with neither is refused at start-up (exit 2).
   */
  audit: z
    .strictObject({
      /** Write audit events to stdout, for a log shipper. Default: true. */
      stdout: z.boolean().default(true),
      /**
       * Also append them to this file (created mode 0640 if missing; its folder must exist and be
       * writable, checked at start-up). Reopened on SIGUSR2, so logrotate can rename it and signal.
       * Relative paths start at the config file's folder. Default: none. A write error after
       * start-up is logged (operational log) and counted (replguard_audit_write_errors_total);
       * stdout, when on, keeps every event.
       */
      file: filePath.optional(),
      /**
       * Repeated refusals of one kind from one client address that carry no request (connections
       * cut at accept or at the TLS layer) are written once per this window, with a count
       * (`replguard.repeated`), so that a flood cannot flood the SIEM; metrics still count every
       * one. Default 10s; 0 writes every refusal.
       */
      repeat_window: duration('10s').default(10_000),
    })
    .prefault({}),
});

/** The config as written (before defaults and unit parsing). */
export type ConfigInput = z.input<typeof configSchema>;
/** The parsed config: defaults applied, durations in ms, sizes in bytes, paths absolute. */
export type Config = z.output<typeof configSchema>;
export type PeerConfig = Config['peers'][number];

/**
 * A peer in force: one of `peers`, or a POP of the control plane's registry
 * (`control_plane.peers`), whose request-signature keys come inline from the registry
 * (`whpk_...`, Ed25519) instead of from files. It has no token files: the registry is not secret.
 */
export interface AuthorisedPeer extends PeerConfig {
  /** Where the entry comes from; absent for `peers`. */
  readonly from?: 'registry';
  /** The registry's `signature_keys` of this POP (`whpk_<base64>`). */
  readonly signature_keys?: readonly string[];
}
export type RouteConfig = Config['routes'][number];
export type AuthMethod = (typeof AUTH_METHODS)[number];
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];
export type JwtConfig = NonNullable<Config['auth']['jwt']>;
export type ReplayConfig = z.output<typeof replaySchema>;

/** The connection caps in force: the configured ones, or their documented defaults. */
export function connectionLimits(limits: Pick<Config['limits'], 'max_connections' | 'max_unauthenticated_connections' | 'max_unauthenticated_per_address'>): {
  total: number; unauthenticated: number; perAddress: number;
} {
  const unauthenticated = limits.max_unauthenticated_connections ?? Math.max(1, Math.floor(limits.max_connections / 2));
  return { total: limits.max_connections, unauthenticated, perAddress: limits.max_unauthenticated_per_address ?? Math.min(32, Math.max(1, Math.floor(unauthenticated / 2))) };
}
/** The `replay:` values used when the section is left out. */
export const REPLAY_DEFAULTS: Readonly<ReplayConfig> = Object.freeze(replaySchema.parse({}));
