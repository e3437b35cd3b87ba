/**
 * What will hurt soon, for `check-config` and `doctor`: legal today, refused or failing in a few
 * days. One list of checks, each a function of the loaded config and the clock, so that a new
 * one (e.g. a bearer secret's expiry) is one more entry of SOON_CHECKS.
 */
import type { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ConfigProblem } from '../config/errors.ts';
import type { LoadedRoleConfig } from '../config/load.ts';
import { readExpiringTokenFile } from '../auth/bearer.ts';
import type { CrlIndex } from '../tls/crl.ts';
import { parseCertificates } from '../tls/material.ts';

/** A certificate expiring within this long is worth a warning: time to renew it. */
export const EXPIRY_WARNING_MS = 14 * 86_400_000;

export interface SoonContext {
  readonly now: number;
  /** The guard's CRLs as its TLS material loaded them (role backup with tls.crl_file). */
  readonly crls?: CrlIndex | undefined;
}

export type SoonCheck = (loaded: LoadedRoleConfig, context: SoonContext) => ConfigProblem[];

/** The certificates of a PEM file; none when it cannot be read (the config checks say why). */
function certificates(file: string): X509Certificate[] {
  try {
    return parseCertificates(readFileSync(file, 'utf8'));
  } catch {
    return [];
  }
}

const days = (ms: number) => Math.max(0, Math.floor(ms / 86_400_000));

function expiring(keyPath: string, file: string, what: string, context: SoonContext, only?: 'leaf'): ConfigProblem[] {
  const certs = certificates(file);
  return (only === 'leaf' ? certs.slice(0, 1) : certs).flatMap((cert) => {
    const left = Date.parse(cert.validTo) - context.now;
    if (left > EXPIRY_WARNING_MS) return [];
    const when = left <= 0 ? `expired on ${cert.validTo}` : `expires in ${days(left)} days (${cert.validTo})`;
    return [{ path: keyPath, message: `${file}: ${what} "${cert.subject.replace(/\n/g, ', ')}" ${when}; renew it before then` }];
  });
}

/**
 * The server certificate and the client CA bundle of the guard; the client certificate and the
 * guard's CA of the signer; for both, the certificate and CA this POP reaches HQ's registry with.
 */
const certificateExpiry: SoonCheck = (loaded, context) => {
  const hq = loaded.config.control_plane?.tls;
  const control = hq
    ? [
      ...expiring('control_plane.tls.cert_file', hq.cert_file, 'the client certificate for HQ', context, 'leaf'),
      ...expiring('control_plane.tls.ca_file', hq.ca_file, 'HQ\'s CA', context),
    ]
    : [];
  if (loaded.role === 'backup') {
    const { tls } = loaded.config;
    return [
      ...expiring('tls.cert_file', tls.cert_file, 'the server certificate', context, 'leaf'),
      ...expiring('tls.client_ca_file', tls.client_ca_file, 'the client CA', context),
      ...control,
    ];
  }
  const { config } = loaded;
  return [
    ...(config.client_tls ? expiring('client_tls.cert_file', config.client_tls.cert_file, 'the client certificate', context, 'leaf') : []),
    ...expiring('backup.ca_file', config.backup.ca_file, 'the CA', context),
    ...control,
  ];
};

/** A CRL past its nextUpdate: every client certificate of that issuer is refused until a new one is published. */
const crlFreshness: SoonCheck = (loaded, context) => {
  if (loaded.role !== 'backup' || !context.crls || loaded.config.tls.crl_file === undefined) return [];
  const file = loaded.config.tls.crl_file;
  return [...context.crls.values()].flatMap((crl) => {
    if (crl.nextUpdateMs === undefined || crl.nextUpdateMs > context.now) return [];
    return [{ path: 'tls.crl_file', message: `${file}: the CRL of ${crl.issuer} is past its nextUpdate (${new Date(crl.nextUpdateMs).toISOString()}): its client certificates are refused until a new CRL is published; publish one` }];
  });
};

/** The signer's JWT made elsewhere (credentials.jwt_token_file): expired, or near its end when it lives longer than the warning window. */
const jwtTokenExpiry: SoonCheck = (loaded, context) => {
  if (loaded.role !== 'primary' || loaded.config.credentials.jwt_token_file === undefined) return [];
  const file = loaded.config.credentials.jwt_token_file;
  let claims: { exp?: unknown; iat?: unknown };
  try {
    claims = JSON.parse(Buffer.from(readFileSync(file, 'utf8').trim().split('.')[1] ?? '', 'base64url').toString('utf8')) as typeof claims;
  } catch {
    return [];
  }
  if (typeof claims.exp !== 'number') return [];
  const left = claims.exp * 1000 - context.now;
  const lifetime = typeof claims.iat === 'number' ? (claims.exp - claims.iat) * 1000 : Number.POSITIVE_INFINITY;
  if (left <= 0) return [{ path: 'credentials.jwt_token_file', message: `${file}: the token expired at ${new Date(claims.exp * 1000).toISOString()}; the guard refuses it: write a new one (replguard make-jwt -o)` }];
  if (lifetime > EXPIRY_WARNING_MS && left <= EXPIRY_WARNING_MS) {
    return [{ path: 'credentials.jwt_token_file', message: `${file}: the token expires in ${days(left)} days (${new Date(claims.exp * 1000).toISOString()}); write a new one before then` }];
  }
  return [];
};

/** The window of the ReplguardBearerSecretExpiresSoon alert (deploy/prometheus/replguard-rules.yaml): the two agree. */
export const BEARER_WARNING_MS = 7 * 86_400_000;

function bearerFile(keyPath: string, file: string, whose: string, context: SoonContext): ConfigProblem[] {
  const read = readExpiringTokenFile(file, keyPath);
  // An unreadable or malformed file is the config checks' problem, reported by them.
  if ('problem' in read || read.notAfter === undefined) return [];
  const left = read.notAfter - context.now;
  const at = new Date(read.notAfter).toISOString();
  if (left <= 0) return [{ path: keyPath, message: `${file}: ${whose} expired at ${at} (its not_after line) and is refused (AUTH_BEARER_EXPIRED); write a new one (replguard gen-token --out FILE --not-after 30d)` }];
  if (left <= BEARER_WARNING_MS) return [{ path: keyPath, message: `${file}: ${whose} expires in ${days(left)} days (${at}); write its successor into another slot before then` }];
  return [];
}

/** Finding 5: bearer secrets that carry a not_after (the guard's peers' token files, the signer's credential). */
const bearerSecretExpiry: SoonCheck = (loaded, context) => {
  if (loaded.role === 'backup') {
    return loaded.config.peers.flatMap((peer, i) => peer.token_files.flatMap((file, slot) => bearerFile(`peers[${i}].token_files[${slot}]`, file, `the bearer secret of ${peer.id}`, context)));
  }
  const file = loaded.config.credentials.token_file;
  return file === undefined ? [] : bearerFile('credentials.token_file', file, "this signer's bearer secret", context);
};

/** Every check, in report order. Add a check here and check-config and doctor both run it. */
export const SOON_CHECKS: readonly SoonCheck[] = [certificateExpiry, crlFreshness, jwtTokenExpiry, bearerSecretExpiry];

export function soonWarnings(loaded: LoadedRoleConfig, context: SoonContext): ConfigProblem[] {
  return SOON_CHECKS.flatMap((check) => check(loaded, context));
}
