/**
 * The guard's TLS gate: everything decided about a connection before its first HTTP byte is
 * read, the same way on Node.js and on Deno (the runtimes' own knobs for these differ or are
 * missing, so the guard enforces each itself):
 *
 *  1. At accept (the TCP connection, before any TLS work): the connection caps
 *     (`limits.max_connections`; `limits.max_unauthenticated_connections` for connections that
 *     have not authenticated yet, so that the rest stays for POPs; and
 *     `limits.max_unauthenticated_per_address`, except from an address a POP has lately
 *     authenticated from with a verified certificate, so that a POP's connection pool can open
 *     at once), and a banned client address (limits/bans.ts `bannedAtAccept`): cut at once,
 *     costing no handshake.
 *  2. The handshake deadline (`limits.handshake_timeout`), from accept.
 *  3. After the handshake: the negotiated protocol and cipher (tls/policy.ts); the client
 *     certificate chain, verified by the runtime AND by the guard (tls/client-trust.ts: CA
 *     bundle, CRL, validity, usage), so that every refusal has one precise reason on both
 *     runtimes; a certificate that is presented must verify even when mTLS is not required
 *     (like nginx's `ssl_verify_client optional`); a required certificate must be present; a
 *     banned POP (by its certificate) or, without a verified POP, a banned address is cut.
 *  4. A handshake that fails: audited with the client's address and port, and counted toward a
 *     ban of the address when the bytes were not TLS at all (TLS_HANDSHAKE_MALFORMED).
 *
 * Every refusal here is one audit event, aggregated per client and reason (audit/repeats.ts) so
 * that a flood cannot flood the SIEM, and counted exactly in the metrics.
 */
import type { Server } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { connectionEvent } from '../audit/event.ts';
import type { RepeatAggregator } from '../audit/repeats.ts';
import { connectionLimits, type Config } from '../config/schema.ts';
import type { Bans } from '../limits/bans.ts';
import { addressKey } from '../store/client-key.ts';
import { newConnection, type ConnectionInfo, type PeerCertificateInfo } from '../pipeline/context.ts';
import type { Reason } from '../pipeline/reasons.ts';
import type { ClientTrust } from '../tls/client-trust.ts';
import { policyViolation } from '../tls/policy.ts';
import type { ParsedCertificate } from '../tls/x509.ts';
import { plainAddress } from '../service/drain.ts';

export interface TlsGateDeps {
  readonly now: () => number;
  /** The config in force (limits, auth methods, tls.min_version). */
  readonly config: () => Readonly<Config>;
  /** The client trust in force (CA bundle and CRLs). */
  readonly trust: () => ClientTrust;
  readonly bans: Bans;
  /** Connection refusals go here: aggregated per (reason, address) into the audit trail, counted in metrics. */
  readonly repeats: RepeatAggregator;
}

export interface TlsGate {
  /** The connection's info once its handshake passed the gate; undefined for any other socket (fail closed). */
  connectionOf(socket: Socket): ConnectionInfo | undefined;
  /** A request of this connection verified its credential: it leaves the unauthenticated pool. */
  authenticated(conn: ConnectionInfo): void;
  /** Open connections, and how many of them have not authenticated. */
  counts(): { open: number; unauthenticated: number };
  /** Stops the handshake timers. */
  close(): void;
}

/** One accepted TCP connection, until it closes. */
interface Accepted {
  readonly address: string;
  readonly port: number;
  readonly key: string;
  /** Set once the handshake passed the gate. */
  conn: ConnectionInfo | undefined;
  /** In the unauthenticated pool (true from accept until a verified identity). */
  unauthenticated: boolean;
  /** The gate refused it: later events of the socket (its TLS error, its close) are not reported again. */
  refused: boolean;
  timer: NodeJS.Timeout | undefined;
}

/**
 * OpenSSL's (and Deno's mapped) codes for bytes that are not a TLS handshake. A handshake that
 * merely broke off, a version or cipher mismatch and alerts the client sent are not on the list:
 * load-balancer probes and old clients do that, and it must not ban anyone.
 */
const MALFORMED_TLS = new Set([
  'ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_HTTP_REQUEST', 'ERR_SSL_HTTPS_PROXY_REQUEST', 'ERR_SSL_UNKNOWN_PROTOCOL',
  'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_BAD_PACKET_LENGTH', 'ERR_SSL_RECORD_LENGTH_MISMATCH', 'ERR_SSL_LENGTH_MISMATCH',
  'ERR_SSL_BAD_RECORD_TYPE', 'ERR_SSL_UNEXPECTED_MESSAGE', 'ERR_SSL_UNEXPECTED_RECORD', 'ERR_SSL_EXCESSIVE_MESSAGE_SIZE',
  'ERR_SSL_LENGTH_TOO_SHORT', 'ERR_SSL_BAD_EXTENSION', 'ERR_SSL_PARSE_TLSEXT', 'ERR_SSL_DECODE_ERROR',
  'ERR_SSL_RECORD_LAYER_FAILURE', 'ERR_SSL_BAD_LENGTH', 'ERR_SSL_INVALID_COMPRESSION_ALGORITHM', 'ERR_SSL_UNSUPPORTED_COMPRESSION_ALGORITHM',
]);

export function attachTlsGate(server: Server, deps: TlsGateDeps): TlsGate {
  const { now, bans, repeats } = deps;
  const accepted = new WeakMap<Socket, Accepted>();
  const byConnection = new WeakMap<ConnectionInfo, Accepted>();
  const unauthenticatedByKey = new Map<string, number>();
  let open = 0;
  let unauthenticated = 0;
  const timers = new Set<NodeJS.Timeout>();

  /** The raw TCP socket under a TLS socket. `_parent` is internal to both runtimes' node:tls (no public accessor exists); a socket without it is the raw one. */
  const rawOf = (socket: Socket): Socket => (socket as Socket & { _parent?: Socket })._parent ?? socket;
  const stateOf = (socket: Socket) => accepted.get(rawOf(socket)) ?? accepted.get(socket);

  const leavePool = (a: Accepted) => {
    if (!a.unauthenticated) return;
    a.unauthenticated = false;
    unauthenticated -= 1;
    const n = (unauthenticatedByKey.get(a.key) ?? 1) - 1;
    if (n <= 0) unauthenticatedByKey.delete(a.key);
    else unauthenticatedByKey.set(a.key, n);
  };

  /** One refusal at the connection level: aggregated audit, exact metrics, ban counting, and the socket cut. */
  const refuse = (a: Accepted, socket: Socket, conn: ConnectionInfo, reason: Reason, detail: string) => {
    a.refused = true;
    repeats.submit(a.key, connectionEvent(conn, reason, detail));
    bans.recordOutcome(reason, conn, undefined);
    socket.destroy();
  };
  const bare = (a: Accepted) => newConnection({ remoteAddress: a.address, remotePort: a.port });

  // 1. At accept. Prepended: the TLS server wraps the socket in its own 'connection' listener;
  // a refused socket is destroyed before that costs anything.
  server.prependListener('connection', (raw: Socket) => {
    const address = plainAddress(raw.remoteAddress);
    const a: Accepted = { address, port: raw.remotePort ?? 0, key: addressKey(address), conn: undefined, unauthenticated: false, refused: false, timer: undefined };
    accepted.set(raw, a);
    const caps = connectionLimits(deps.config().limits);
    if (open >= caps.total) return refuse(a, raw, bare(a), 'LIMIT_CONNECTIONS_EXCEEDED', `${open} connections open, limits.max_connections ${caps.total}`);
    const banned = bans.bannedAtAccept(a.key);
    if (banned) return refuse(a, raw, bare(a), 'LIMIT_BANNED_CONNECTION', `${banned.key} is banned until ${new Date(banned.until).toISOString()}`);
    const fromHere = unauthenticatedByKey.get(a.key) ?? 0;
    // An address a POP authenticated from lately (a certificate that verified) may open its
    // connection pool at once; its handshakes still count in the unauthenticated total below.
    if (fromHere >= caps.perAddress && !bans.isVerifiedAddress(a.key)) return refuse(a, raw, bare(a), 'LIMIT_ADDRESS_CONNECTIONS_EXCEEDED', `${fromHere} unauthenticated connections from ${a.key}, limits.max_unauthenticated_per_address ${caps.perAddress}`);
    // Nor does the unauthenticated pool hold it: many addresses filling the pool keep out
    // whoever has not authenticated lately, not a POP's next connection from its own address.
    if (unauthenticated >= caps.unauthenticated && !bans.isVerifiedAddress(a.key)) return refuse(a, raw, bare(a), 'LIMIT_CONNECTIONS_EXCEEDED', `${unauthenticated} unauthenticated connections, limits.max_unauthenticated_connections ${caps.unauthenticated}`);

    open += 1;
    unauthenticated += 1;
    a.unauthenticated = true;
    unauthenticatedByKey.set(a.key, fromHere + 1);
    // 2. The handshake deadline.
    a.timer = setTimeout(() => {
      timers.delete(a.timer!);
      a.timer = undefined;
      if (!a.conn && !a.refused && !raw.destroyed) refuse(a, raw, bare(a), 'TLS_HANDSHAKE_TIMEOUT', `no complete handshake within ${deps.config().limits.handshake_timeout} ms`);
    }, deps.config().limits.handshake_timeout);
    a.timer.unref();
    timers.add(a.timer);
    raw.once('close', () => {
      if (a.timer) {
        clearTimeout(a.timer);
        timers.delete(a.timer);
      }
      open -= 1;
      leavePool(a);
    });
  });

  // 3. After the handshake, before the HTTP layer sees the socket (prepended).
  server.prependListener('secureConnection', (socket: TLSSocket) => {
    const a = stateOf(socket);
    if (!a || a.refused) {
      socket.destroy();
      return;
    }
    if (a.timer) {
      clearTimeout(a.timer);
      timers.delete(a.timer);
      a.timer = undefined;
    }
    const config = deps.config();
    const tlsVersion = socket.getProtocol() ?? undefined;
    const base = { remoteAddress: a.address, remotePort: a.port, tlsVersion };
    const violation = policyViolation(config.tls.min_version, tlsVersion, socket.getCipher?.() as { name?: string; standardName?: string } | undefined);
    if (violation) return refuse(a, socket, newConnection(base), 'TLS_HANDSHAKE_FAILED', violation);

    const chain = readPeerChain(socket);
    const trust = deps.trust();
    let peer: PeerCertificateInfo | undefined;
    let verifiedUntilMs = Infinity;
    // A banned address's handshake (its one probe a second) gets through only with a verified
    // POP certificate; anything less is refused as banned, not for what it lacks.
    const bannedAddress = () => bans.bannedAtHandshake(newConnection(base));
    if (chain.length === 0) {
      const banned = bannedAddress();
      if (banned) return refuse(a, socket, newConnection(base), 'LIMIT_BANNED_CONNECTION', `${banned.key} is banned until ${new Date(banned.until).toISOString()}`);
      if (config.auth.methods.includes('mtls')) return refuse(a, socket, newConnection(base), 'TLS_CLIENT_CERT_MISSING', 'no client certificate');
    } else {
      const verdict = trust.verify(chain, now());
      // The unverified certificate's names are logged for forensics, never used for a decision.
      if (!verdict.ok) {
        const unverified = newConnection({ ...base, peer: verdict.leaf && peerInfo(verdict.leaf, verdict.leaf.notAfterMs) });
        const banned = bannedAddress();
        if (banned) return refuse(a, socket, unverified, 'LIMIT_BANNED_CONNECTION', `${banned.key} is banned until ${new Date(banned.until).toISOString()}`);
        return refuse(a, socket, unverified, verdict.reason, verdict.detail);
      }
      peer = peerInfo(verdict.leaf, verdict.notAfterMs);
      verifiedUntilMs = verdict.validUntilMs;
      // Both verdicts must accept: the runtime's TLS stack may refuse what this guard does not check.
      if (socket.authorized !== true) return refuse(a, socket, newConnection({ ...base, peer }), 'TLS_CLIENT_CERT_INVALID', `the runtime's TLS verification refused it (${String(socket.authorizationError ?? 'unknown')})`);
    }
    const conn = newConnection({ ...base, peer, peerChain: chain, verifiedTrust: trust.fingerprint, verifiedUntilMs });
    const pop = bans.connectionPop(conn);
    const banned = bans.bannedAtHandshake(conn);
    if (banned) return refuse(a, socket, conn, 'LIMIT_BANNED_CONNECTION', `${banned.key} is banned until ${new Date(banned.until).toISOString()}`);
    if (pop !== undefined) {
      // A fully verified certificate of a configured POP: authenticated from the start.
      conn.authenticated = true;
      leavePool(a);
      bans.noteVerifiedAddress(conn);
    }
    a.conn = conn;
    byConnection.set(conn, a);
  });

  // 4. A failed handshake.
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    const a = stateOf(socket);
    if (!a || a.refused) return;
    a.refused = true;
    const code = err.code ?? 'unknown';
    const reason: Reason = code === 'ERR_TLS_HANDSHAKE_TIMEOUT' ? 'TLS_HANDSHAKE_TIMEOUT' : MALFORMED_TLS.has(code) ? 'TLS_HANDSHAKE_MALFORMED' : 'TLS_HANDSHAKE_FAILED';
    const conn = bare(a);
    repeats.submit(a.key, connectionEvent(conn, reason, code));
    bans.recordOutcome(reason, conn, undefined);
  });

  return {
    connectionOf(socket) {
      const a = accepted.get(rawOf(socket));
      return a && !a.refused ? a.conn : undefined;
    },
    authenticated(conn) {
      if (conn.authenticated) return;
      conn.authenticated = true;
      const a = byConnection.get(conn);
      if (a) leavePool(a);
    },
    counts: () => ({ open, unauthenticated }),
    close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
    },
  };
}

/**
 * The DER chain the client presented (leaf first), from `getPeerCertificate(true)`: one call per
 * connection (it costs ~22 µs). Both runtimes link each certificate to its issuer through
 * `issuerCertificate`, the root to itself; Deno hands out `raw` as a plain Uint8Array.
 */
export function readPeerChain(socket: TLSSocket): Uint8Array[] {
  const chain: Uint8Array[] = [];
  let cert = socket.getPeerCertificate(true) as { raw?: Uint8Array; issuerCertificate?: unknown } | undefined;
  const seen = new Set<unknown>();
  while (cert?.raw && !seen.has(cert) && chain.length < 16) {
    seen.add(cert);
    chain.push(cert.raw);
    cert = cert.issuerCertificate as typeof cert;
  }
  return chain;
}

export function peerInfo(leaf: ParsedCertificate, notAfterMs: number): PeerCertificateInfo {
  return {
    subject: leaf.subjectText,
    commonNames: leaf.commonNames,
    dnsSans: leaf.dnsSans,
    uriSans: leaf.uriSans,
    sha256: leaf.sha256,
    notAfterMs,
  };
}
