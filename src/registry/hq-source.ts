/**
 * HQ's registry endpoint (`control_plane.registry_url`): one GET per poll over TLS 1.3, the
 * server's chain verified against `control_plane.tls.ca_file` and its name against the URL's host
 * (or `tls.server_name`), this POP's client certificate presented, and a conditional request
 * (RFC 9110 section 13.1.2, `If-None-Match`) so that an unchanged registry costs a 304.
 *
 * Everything about the answer is bounded: one deadline for connection, handshake, headers and
 * body; at most MAX_REGISTRY_BYTES of body (a larger `Content-Length` is refused before reading);
 * no redirect followed. A failure is a SourceError with one of REGISTRY_SOURCE_FAILURES; what HQ
 * sent (its body, its headers) never goes into the message: only the status and Node's error code.
 * The TLS material is read again for every request, so a renewed client certificate is used from
 * the next poll on, and a broken one is a failure of that poll (the copy in force is kept).
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request, type RequestOptions } from 'node:https';
import { isIP } from 'node:net';
import { checkServerIdentity, type PeerCertificate, type TLSSocket } from 'node:tls';
import { ConfigError, type ConfigProblem } from '../config/errors.ts';
import { checkReadableFile, checkSecretFile } from '../config/files.ts';
import type { ControlPlaneConfig } from '../config/schema.ts';
import { MAX_REGISTRY_BYTES } from './verify.ts';

/** Why a poll of HQ brought no document (the audit event's `replguard.registry.refusal`). */
export const REGISTRY_SOURCE_FAILURES = [
  /** No connection: refused, reset, DNS, or HQ closed it before answering. */
  'REGISTRY_SOURCE_UNREACHABLE',
  /** HQ's certificate did not verify (chain, name), or HQ refused this POP's certificate. */
  'REGISTRY_SOURCE_TLS',
  /** No complete answer within `control_plane.timeout`. */
  'REGISTRY_SOURCE_TIMEOUT',
  /** A status other than 200 (or 304 to a conditional request), redirects included. */
  'REGISTRY_SOURCE_STATUS',
  /** A body (declared or sent) over the size limit. */
  'REGISTRY_SOURCE_TOO_LARGE',
  /** This POP's own TLS material (control_plane.tls) cannot be read or is unusable. */
  'REGISTRY_SOURCE_MATERIAL',
] as const;
export type RegistrySourceFailure = (typeof REGISTRY_SOURCE_FAILURES)[number];

export class SourceError extends Error {
  override name = 'SourceError';
  constructor(readonly code: RegistrySourceFailure, message: string) {
    super(message);
  }
}

/** What one poll brought: a document (with HQ's ETag, if it sent a usable one), or "unchanged". */
export type FetchResult = { readonly kind: 'document'; readonly text: string; readonly etag?: string } | { readonly kind: 'not-modified' };

export interface HqTlsMaterial {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

type HqTlsConfig = NonNullable<ControlPlaneConfig['tls']>;

/** Reads and checks `control_plane.tls`, all or nothing: a ConfigError names every bad file. */
export function loadHqTls(tls: HqTlsConfig, now: number): HqTlsMaterial {
  const problems: ConfigProblem[] = [];
  const read = (file: string, at: string, secret: boolean): string | undefined => {
    const problem = secret ? checkSecretFile(file, at) : checkReadableFile(file, at);
    if (problem) {
      problems.push(problem);
      return undefined;
    }
    return readFileSync(file, 'utf8');
  };
  const ca = read(tls.ca_file, 'control_plane.tls.ca_file', false);
  const cert = read(tls.cert_file, 'control_plane.tls.cert_file', false);
  const key = read(tls.key_file, 'control_plane.tls.key_file', true);
  if (ca !== undefined) {
    const cas = pemCertificates(ca);
    if (cas.length === 0) problems.push({ path: 'control_plane.tls.ca_file', message: `${tls.ca_file}: not a PEM CA bundle` });
    for (const c of cas) if (!c.ca) problems.push({ path: 'control_plane.tls.ca_file', message: `${tls.ca_file}: "${c.subject.replace(/\n/g, ', ')}" is not a CA certificate` });
  }
  const leaf = cert !== undefined ? pemCertificates(cert)[0] : undefined;
  if (cert !== undefined && !leaf) problems.push({ path: 'control_plane.tls.cert_file', message: `${tls.cert_file}: not a PEM certificate chain` });
  if (leaf) {
    if (Date.parse(leaf.validTo) <= now) problems.push({ path: 'control_plane.tls.cert_file', message: `${tls.cert_file}: the client certificate expired on ${leaf.validTo}; renew it` });
    if (Date.parse(leaf.validFrom) > now) problems.push({ path: 'control_plane.tls.cert_file', message: `${tls.cert_file}: the client certificate is not valid until ${leaf.validFrom}` });
  }
  if (key !== undefined) {
    try {
      if (leaf && !leaf.checkPrivateKey(createPrivateKey(key))) problems.push({ path: 'control_plane.tls.key_file', message: `${tls.key_file} does not match the certificate in control_plane.tls.cert_file` });
    } catch (err) {
      problems.push({ path: 'control_plane.tls.key_file', message: `${tls.key_file}: not an unencrypted PEM private key (${(err as Error).message})` });
    }
  }
  if (problems.length > 0 || ca === undefined || cert === undefined || key === undefined) throw new ConfigError(problems);
  return { ca, cert, key };
}

function pemCertificates(pem: string): X509Certificate[] {
  try {
    return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((block) => new X509Certificate(block));
  } catch {
    return [];
  }
}

/** A `registry_url` an operator may give: `https:` with a host, no credentials, no fragment. */
export function checkRegistryUrl(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'not a URL; e.g. https://hq.example.org/registry.jws';
  }
  if (url.protocol !== 'https:') return `${url.protocol} is not https: (the registry is fetched over verified TLS only)`;
  if (url.username !== '' || url.password !== '') return 'a URL with user:password is refused (the credential would be in the config); HQ authenticates this POP by its client certificate';
  if (url.hash !== '') return 'a URL with a #fragment is refused';
  return undefined;
}

// An entity tag as RFC 9110 section 8.8.3 writes it: optional W/, then a quoted string of
// printable ASCII. Anything else is not sent back to HQ.
const ETAG = /^(W\/)?"[\x21\x23-\x7e\x80-\xff]{0,254}"$/;

// OpenSSL's verification results and Node's name check, and the alerts a server sends when it
// refuses the client's certificate: a TLS failure rather than an unreachable HQ.
const TLS_ERRORS = /^(ERR_TLS_|ERR_SSL_|UNABLE_TO_|CERT_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|HOSTNAME_MISMATCH|INVALID_CA|INVALID_PURPOSE)/;

export interface FetchOptions {
  readonly etag?: string | undefined;
  readonly timeoutMs: number;
  readonly serverName?: string | undefined;
  readonly maxBytes?: number;
}

/** One conditional GET of the registry. Resolves with the result; rejects with a SourceError only. */
export function fetchRegistry(urlText: string, material: HqTlsMaterial, options: FetchOptions): Promise<FetchResult> {
  const url = new URL(urlText);
  const hostname = url.hostname.replace(/^\[|\]$/g, '');
  const serverName = options.serverName ?? hostname;
  const maxBytes = options.maxBytes ?? MAX_REGISTRY_BYTES;
  const headers: Record<string, string> = { accept: 'application/jose', 'user-agent': 'replguard' };
  if (options.etag !== undefined) headers['if-none-match'] = options.etag;
  const requestOptions: RequestOptions = {
    method: 'GET',
    hostname,
    port: Number(url.port || 443),
    path: `${url.pathname}${url.search}`,
    headers,
    // One connection per poll: nothing is resumed or reused, so every poll verifies HQ's
    // certificate with the material read just now.
    agent: false,
    ca: material.ca,
    cert: material.cert,
    key: material.key,
    ...(isIP(serverName) === 0 ? { servername: serverName } : {}),
    minVersion: 'TLSv1.3',
    rejectUnauthorized: true,
    checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(serverName, cert),
  };
  return new Promise<FetchResult>((resolve, reject) => {
    let settled = false;
    let handshook = false;
    let answered = false;
    const fail = (err: SourceError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      reject(err);
    };
    const req = request(requestOptions, (res) => {
      answered = true;
      const status = res.statusCode ?? 0;
      const protocol = (res.socket as TLSSocket).getProtocol?.();
      if (protocol !== undefined && protocol !== null && protocol !== 'TLSv1.3') {
        fail(new SourceError('REGISTRY_SOURCE_TLS', `HQ negotiated ${protocol}; the registry is fetched over TLS 1.3 only`));
        return;
      }
      if (status === 304) {
        res.resume();
        if (options.etag === undefined) fail(new SourceError('REGISTRY_SOURCE_STATUS', 'HQ answered 304 to a request that was not conditional'));
        else finish({ kind: 'not-modified' });
        return;
      }
      if (status !== 200) {
        res.resume();
        fail(new SourceError('REGISTRY_SOURCE_STATUS', `HQ answered ${status}${status >= 300 && status < 400 ? ' (redirects are not followed)' : ''}`));
        return;
      }
      const declared = Number(res.headers['content-length'] ?? 0);
      if (declared > maxBytes) {
        fail(new SourceError('REGISTRY_SOURCE_TOO_LARGE', `HQ declared ${declared} bytes, over the ${maxBytes}-byte limit`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) fail(new SourceError('REGISTRY_SOURCE_TOO_LARGE', `HQ sent more than ${maxBytes} bytes`));
        else chunks.push(chunk);
      });
      res.on('end', () => {
        const etag = res.headers.etag;
        finish({ kind: 'document', text: Buffer.concat(chunks).toString('utf8'), ...(typeof etag === 'string' && ETAG.test(etag) ? { etag } : {}) });
      });
      res.on('aborted', () => fail(new SourceError('REGISTRY_SOURCE_UNREACHABLE', 'HQ closed the connection before the end of the answer')));
      res.on('error', (err: NodeJS.ErrnoException) => fail(classify(err)));
    });
    const finish = (result: FetchResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const timer = setTimeout(() => fail(new SourceError('REGISTRY_SOURCE_TIMEOUT', `no complete answer within ${options.timeoutMs} ms`)), options.timeoutMs);
    // In TLS 1.3 a server refuses the client's certificate after the client finished its side of
    // the handshake: the client sees the connection reset, not a handshake error.
    // Deno's node:https may not report that reset as an error of the request at all: a socket
    // that closes before any answer ends the request too (after the error, if one comes).
    req.on('socket', (socket) => {
      socket.once('secureConnect', () => (handshook = true));
      socket.once('close', () => setImmediate(() => {
        if (answered) return;
        fail(handshook
          ? new SourceError('REGISTRY_SOURCE_TLS', 'HQ closed the connection after the TLS handshake, before any answer: it may not accept this POP\'s client certificate (control_plane.tls.cert_file)')
          : new SourceError('REGISTRY_SOURCE_UNREACHABLE', 'HQ closed the connection before the TLS handshake ended'));
      }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (handshook && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
        fail(new SourceError('REGISTRY_SOURCE_TLS', `HQ closed the connection after the TLS handshake, before any answer (${err.code}): it may not accept this POP's client certificate (control_plane.tls.cert_file)`));
      } else fail(classify(err));
    });
    req.end();
  });
}

function classify(err: NodeJS.ErrnoException): SourceError {
  const code = err.code ?? '';
  if (TLS_ERRORS.test(code) || /certificate|handshake|alert/i.test(err.message)) {
    return new SourceError('REGISTRY_SOURCE_TLS', `TLS with HQ failed (${code || 'handshake'})`);
  }
  return new SourceError('REGISTRY_SOURCE_UNREACHABLE', `HQ is unreachable (${code || 'connection failed'})`);
}
