/**
 * The signer's (role: primary) config schema. A separate schema: the role decides which keys
 * exist, so that a backup cannot be configured to send replication and a primary cannot be
 * configured to accept it (cascade prevention, config/load.ts says why when one tries). Shared
 * sections (admin, limits, log, shutdown_timeout) are the guard's own definitions.
 */
import { z } from 'zod';
import { adminListener, duration, filePath, listenerLimits, popIdSchema, port, sha256Pin } from './fields.ts';
import { configSchema, controlPlaneSchema, JWT_ALGORITHMS } from './schema.ts';

/** The route the primary's replication client posts to, and the only one the signer serves. */
export const SIGNER_ROUTE = { method: 'POST', path: '/api/replication/apply' } as const;

/** The integer retry table of the signer, in seconds (docs/security.md, findings: no floating-point backoff). */
export const RETRY_DELAYS_SECONDS = [1, 5, 25, 125, 625] as const;

const signerJwt = z.strictObject({
  /**
   * PEM private key (RSA of at least 2048 bits, P-256/384/521 or Ed25519) that signs a fresh
   * token per attempt; its public key is in the guard's `auth.jwt.public_keys` for this POP.
   * Must not be readable by others. Required.
   */
  key_file: filePath,
  /** The algorithm; default: follows the key (RSA: RS256, P-256: ES256, Ed25519: EdDSA, ...). */
  alg: z.enum(JWT_ALGORITHMS).optional(),
  /** Token lifetime (`exp - iat`). Default 60s, 1s to 1h: a token is made per attempt, so short is free. */
  ttl: duration('60s').default(60_000).refine((ms) => ms >= 1000 && ms <= 3_600_000, 'ttl must be between 1s and 1h'),
  /** The `iss` claim. Default `replguard` (what the guard accepts by default). */
  issuer: z.string().min(1).default('replguard'),
  /**
   * Bind each token to the client certificate (RFC 8705 `cnf: {"x5t#S256": ...}`), so that a
   * token is useless without the certificate's key. Default false. Needs `client_tls`.
   */
  bind_cert: z.boolean().default(false),
});

export const primaryConfigSchema = z.strictObject({
  /** This POP's id: the body's `source_pop` and the JWT `sub`. */
  pop_id: configSchema.shape.pop_id,
  /** `primary` runs the signer (egress). Config file only. */
  role: z.literal('primary'),
  listen: z
    .strictObject({
      /** Where the primary's replication client connects, plain HTTP. Default 127.0.0.1 (loopback). */
      host: z.string().min(1).default('127.0.0.1'),
      /** Default 8080. */
      port: port.default(8080),
      /**
       * Allow a non-loopback `host`. Risky: the listener takes plain HTTP and signs whatever
       * reaches it, so anyone who can reach it can replicate as this POP. Default false.
       */
      unsafe_listen_non_loopback: z.boolean().default(false),
    })
    .prefault({}),
  /** The remote guard (role: backup) this POP replicates to. Required. */
  backup: z.strictObject({
    /** The backup POP's id: the JWT `aud` (the guard's `pop_id`). */
    id: popIdSchema,
    /** `https://host:port` of the remote guard; no path, query or credentials. */
    url: z.string().min(1),
    /** CA bundle (PEM) the guard's certificate must chain to. Always verified; there is no option to skip it. */
    ca_file: filePath,
    /** The name the guard's certificate must carry (DNS or IP SAN). Default: the URL's host. Also sent as SNI. */
    server_name: z.string().min(1).optional(),
    /** Optional SHA-256 pins of the guard's certificate (hex, colons allowed), checked on top of chain and name. */
    pin_sha256: z.array(sha256Pin).default([]),
    /** TLSv1.3 by default; TLSv1.2 only when set explicitly. */
    min_tls_version: z.enum(['TLSv1.3', 'TLSv1.2']).default('TLSv1.3'),
    /** Time allowed per attempt, connection to last response byte. Default 30s; after it the attempt is retried. */
    timeout: duration('30s').default(30_000),
  }),
  /** This POP's client certificate and key for mTLS to the guard. Optional only when the guard does not list mtls. */
  client_tls: z
    .strictObject({
      /** Client certificate chain (PEM). */
      cert_file: filePath,
      /** Its private key (PEM), not readable by others. */
      key_file: filePath,
    })
    .optional(),
  /**
   * The `Authorization: Bearer` credential attached to each attempt: at most one of
   * `token_file` (a shared secret), `jwt` (minted per attempt) or `jwt_token_file` (a token
   * made elsewhere, re-read on change). Default: none (mTLS and the signature only).
   */
  credentials: z
    .strictObject({
      /** File holding this POP's bearer secret (as `replguard gen-token` writes it); checked like the guard's token files (at least 128 bits by the secret-strength estimate). */
      token_file: filePath.optional(),
      /** Mint a short-lived JWT per attempt. */
      jwt: signerJwt.optional(),
      /** File holding a JWT (e.g. from `replguard make-jwt -o` or a token service), sent as is. */
      jwt_token_file: filePath.optional(),
    })
    .refine((c) => [c.token_file, c.jwt, c.jwt_token_file].filter((v) => v !== undefined).length <= 1, {
      message: 'set at most one of token_file, jwt or jwt_token_file: the request carries one Authorization header',
    })
    .prefault({}),
  /**
   * Signing key files (Standard Webhooks), one key per file: `whsec_<base64>` (HMAC, v1) or an
   * Ed25519 private key (`whsk_<base64>` or PEM, v1a). Each request is signed with every key
   * (a rotation lists two). Files must not be readable by others. 1 to 8; required.
   */
  signing_keys: z.array(filePath).min(1, 'list at least one key file: every request is signed').max(8, 'at most 8 keys (the guard reads at most 8 signature entries)'),
  retry: z
    .strictObject({
      /**
       * Retries after the first attempt, waiting 1s, 5s, 25s, 125s, 625s (the integer table
       * RETRY_DELAYS_SECONDS; a longer Retry-After is honoured up to 625s). Default 5, 0 to 5.
       */
      max_retries: z.number().int().min(0).max(RETRY_DELAYS_SECONDS.length).default(RETRY_DELAYS_SECONDS.length),
    })
    .prefault({}),
  /** How often the credential and signing key files are re-read as a fallback to SIGHUP and file-change events. Default 60s; 0 turns the timer off. */
  reload_interval: duration('60s').default(60_000),
  /** The signer's admin listener: /healthz and /readyz only (no metrics, no ban administration, so no token). */
  admin: z.strictObject(adminListener).prefault({}),
  /** The listener limits of the primary-facing side; rate limits and bans are the guard's. */
  limits: z.strictObject(listenerLimits).prefault({}),
  shutdown_timeout: configSchema.shape.shutdown_timeout,
  log: configSchema.shape.log,
  /**
   * The signed POP registry that confirms this signer's role (`controlPlaneSchema`): it must list
   * `pop_id` as a primary with `backup.id` in its `replicates_to`. Otherwise the signer does not
   * start (exit 2), or at run time sends nothing (503 to the primary, readyz false). Default: none.
   */
  control_plane: controlPlaneSchema.optional(),
});

/** The signer's config as written. */
export type PrimaryConfigInput = z.input<typeof primaryConfigSchema>;
/** The signer's parsed config: defaults applied, durations in ms, sizes in bytes, paths absolute. */
export type PrimaryConfig = z.output<typeof primaryConfigSchema>;
export type SignerJwtConfig = NonNullable<PrimaryConfig['credentials']['jwt']>;
