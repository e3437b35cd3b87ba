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
});

const route = z.strictObject({
  method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']),
  path: z.string().min(1),
});

export const AUTH_METHODS = ['mtls', 'bearer', 'jwt', 'signature'] as const;

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
      /** Credentials every request must carry. */
      methods: z.array(z.enum(AUTH_METHODS)).min(1).default(['mtls']),
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
