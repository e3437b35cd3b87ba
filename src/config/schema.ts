/**
 * The config file's schema: the single source of truth for its keys, types and defaults.
 * README's "Configuration reference" documents every key listed here (a test checks the parity).
 *
 * Unknown keys are errors (a typo in a security config must not be ignored) and nothing is
 * coerced silently: `port: "8443"` is a type error, not a number.
 */
import { z } from 'zod';
import { parseDuration, parseSize } from './units.ts';

const duration = (example: string) =>
  z.union([z.string(), z.number()]).transform((value, ctx) => {
    const ms = parseDuration(value);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `not a duration; write a number with a unit (ms, s, m, h, d), e.g. ${example}` });
      return z.NEVER;
    }
    return ms;
  });

const size = (example: string) =>
  z.union([z.string(), z.number()]).transform((value, ctx) => {
    const bytes = parseSize(value);
    if (bytes === undefined) {
      ctx.addIssue({ code: 'custom', message: `not a size; write bytes or a number with a unit (KiB, MiB, GiB), e.g. ${example}` });
      return z.NEVER;
    }
    return bytes;
  });

const port = z.number().int().min(0).max(65535);
const filePath = z.string().min(1);

/** A SHA-256 certificate fingerprint, hex with or without colons; stored as lowercase hex. */
const sha256Pin = z.string().transform((value, ctx) => {
  const hex = value.replace(/:/g, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    ctx.addIssue({ code: 'custom', message: 'not a SHA-256 fingerprint; write 64 hex digits (colons allowed), e.g. from `openssl x509 -noout -fingerprint -sha256`' });
    return z.NEVER;
  }
  return hex;
});

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

const peer = z.strictObject({
  /** The POP id this peer authenticates as (e.g. `calgary-01`). */
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'a POP id is 1 to 63 characters of letters, digits, ".", "_" or "-"'),
  /** How the peer's client certificate names it. */
  cert: certSelector,
  /** Optional SHA-256 pins of the peer's certificate, checked on top of chain validation. */
  cert_sha256: z.array(sha256Pin).default([]),
  /**
   * Files holding this peer's bearer secrets, one secret per file (a trailing newline is
   * ignored). Every listed file is valid at once, so a secret rotates with overlap; an empty
   * file is a retired slot. Secrets shorter than 32 bytes or of low entropy are refused at
   * start-up and at reload (the old set stays in force). Files must not be readable by others.
   * Default: none (the peer cannot authenticate with `bearer`).
   */
  token_files: z.array(filePath).default([]),
});

const route = z.strictObject({
  method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']),
  path: z.string().min(1),
});

export const AUTH_METHODS = ['mtls', 'bearer', 'jwt', 'signature'] as const;

/** The JWS algorithms a JWT may be signed with. HS* and none are never accepted. */
export const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

const popIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'a POP id is 1 to 63 characters of letters, digits, ".", "_" or "-"');

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

export const configSchema = z.strictObject({
  /** This POP's id; the default JWT audience. */
  pop_id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'a POP id is 1 to 63 characters of letters, digits, ".", "_" or "-"'),
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
  admin: z
    .strictObject({
      host: z.string().min(1).default('127.0.0.1'),
      port: port.default(9090),
    })
    .prefault({}),
  limits: z
    .strictObject({
      /** Largest request body; a larger declared or streamed body is 413. */
      max_body_bytes: size('10MiB').default(10 * 1024 * 1024),
      /** Largest request head (request line and headers); larger is refused. */
      max_header_bytes: size('16KiB').default(16 * 1024),
      /** Most request headers; more is refused. */
      max_headers: z.number().int().min(8).max(1000).default(64),
      /** Time for a client to send the whole request head (slowloris): 408 after it. */
      header_timeout: duration('10s').default(10_000),
      /** Time for a client to send the whole request, body included: 408 after it. */
      request_timeout: duration('60s').default(60_000),
      /** How long an idle keep-alive connection stays open; long, so that POPs do not re-handshake. */
      keep_alive_timeout: duration('75s').default(75_000),
      /** Most simultaneous client connections; more are refused at accept. */
      max_connections: z.number().int().min(1).default(1024),
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
});

/** The config as written (before defaults and unit parsing). */
export type ConfigInput = z.input<typeof configSchema>;
/** The parsed config: defaults applied, durations in ms, sizes in bytes, paths absolute. */
export type Config = z.output<typeof configSchema>;
export type PeerConfig = Config['peers'][number];
export type RouteConfig = Config['routes'][number];
export type AuthMethod = (typeof AUTH_METHODS)[number];
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];
export type JwtConfig = NonNullable<Config['auth']['jwt']>;
