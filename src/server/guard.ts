/**
 * The guard (role: backup). Wires the TLS listener, the pipeline of PRODUCT.md and the admin
 * listener; it decides nothing itself. Per request: build the context, run the stages, send
 * a refusal through the one response boundary, write exactly one audit event.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TLSSocket } from 'node:tls';
import type { AuditLog } from '../audit/audit-log.ts';
import { connectionEvent, reloadEvent, requestEvent, type AuditEvent } from '../audit/event.ts';
import { createPeerIndex } from '../auth/mtls.ts';
import type { Config } from '../config/schema.ts';
import { Bans } from '../limits/bans.ts';
import type { OperationalLog } from '../log/operational.ts';
import { createMetrics, type Metrics } from '../metrics/metrics.ts';
import type { ConnectionInfo, RequestContext } from '../pipeline/context.ts';
import { REASONS, Rejection, type Reason } from '../pipeline/reasons.ts';
import { errorBody, sendRejection } from '../pipeline/respond.ts';

import { classifyAuthorizationError, readPeerCertificate } from '../tls/peer-certificate.ts';
import { createSharedState } from '../store/create.ts';
import type { LoadedConfig } from '../config/load.ts';
import { createReloadableSource, type ReloadableSource, type ReloadListener, type ReloadTrigger } from '../reload/source.ts';
import { loadAdminToken, type AdminToken } from './admin-access.ts';
import { startAdminServer } from './admin.ts';
import { drainServer, plainAddress, writeRawRefusal } from './drain.ts';
import { listenerOptions, listenOrExplain } from './listen.ts';
import { createLiveGuard, type LiveGuard } from './reload.ts';

const CONNECTION = Symbol('replguard.connection');
type GuardSocket = Socket & { [CONNECTION]?: ConnectionInfo };

export interface GuardDeps {
  readonly audit: AuditLog;
  readonly log: OperationalLog;
  /** Created from the config when not given. */
  readonly metrics?: Metrics;
  readonly now?: () => number;
  /** Where the config came from: when given, SIGHUP and a change of the file reload it. */
  readonly source?: LoadedConfig;
  /** Told the result of every reload attempt (config, tls, each credential source): metrics. */
  readonly onReload?: ReloadListener;
}

export interface Guard {
  /** The bound TLS port (useful with port 0). */
  readonly port: number;
  readonly adminPort: number;
  ready(): boolean;
  /** Re-reads the config file, the TLS material and the credential files (server/reload.ts); never throws. */
  reload(trigger: ReloadTrigger): void;
  /** Stops accepting, lets in-flight requests finish up to `shutdown_timeout`, then closes. */
  shutdown(): Promise<void>;
}

export async function startGuard(config: Readonly<Config>, deps: GuardDeps): Promise<Guard> {
  const { audit, log } = deps;
  const now = deps.now ?? Date.now;
  const metrics = deps.metrics ?? createMetrics(config, now);
  /** The one place events are written: the audit trail and the metrics derived from it. */
  const record = (event: AuditEvent) => {
    audit.write(event);
    metrics.observe(event);
  };

  // Nonces, rate counters and bans: in memory, or in Redis shared with other replicas. Made once
  // per process: a config reload builds a new pipeline over the same state.
  const state = createSharedState(config, { now, log });
  const peers = createPeerIndex(config.peers);
  const bans = new Bans(config, state, {
    now,
    audit,
    log,
    popOfCertificate: (cert) => {
      const match = peers.match(cert);
      return 'pop' in match ? match.pop : undefined;
    },
  });
  bans.start();

  // Every reload result is counted and, unless nothing changed, audited (a failure is an alert).
  const onReload: ReloadListener = (report) => {
    if (report.outcome !== 'unchanged') {
      const result = report.outcome === 'failed' ? 'failure' : 'success';
      metrics.countReload(result);
      record(reloadEvent(result, report.trigger, `${report.source}${report.error !== undefined ? `: ${report.error}` : ''}`));
    }
    deps.onReload?.(report);
  };

  // Config, TLS context and pipeline in force; they change on reload (server/reload.ts).
  let live: LiveGuard;
  try {
    live = createLiveGuard(config, { log, now, source: deps.source, onReload, shared: { nonceStore: state.nonces, bans, limiters: state.limiters } });
  } catch (err) {
    bans.stop();
    await state.close();
    throw err;
  }
  metrics.trackCertificates(() => {
    const material = live.tlsMaterial();
    return [
      { source: 'tls.cert_file', certificate: material.serverCertificate },
      ...material.caCertificates.map((certificate) => ({ source: 'tls.client_ca_file', certificate })),
    ];
  });

  let draining = false;
  /**
   * Requests whose audit event is not written yet, each with a way to write it now: shutdown
   * writes every one before it returns, so that the audit stream can end and the process exit.
   */
  const unrecorded = new Set<() => void>();
  let listening = false;

  const server: Server = createServer(
    {
      ...live.tlsOptions(),
      requestCert: true,
      // Chains are verified by OpenSSL during the handshake either way; deciding here (in
      // secureConnection) lets the audit event name the precise reason before the socket closes.
      rejectUnauthorized: false,
      sessionTimeout: 300,
      // A client that never finishes its handshake is cut like one that never finishes its headers.
      handshakeTimeout: config.limits.header_timeout,
      ...listenerOptions(config.limits),
    },
    (req, res) => handle(req, res),
  );
  live.serve(server);

  // The client CA bundle and CRL a connection is verified with are those in force when it was
  // accepted (Node binds the TLS context then, before the handshake's round trips), so they are
  // noted at accept, keyed by the client's address and port until the handshake is over.
  const trustAtAccept = new Map<string, string>();
  server.on('connection', (raw: Socket) => {
    const key = `${raw.remoteAddress}:${raw.remotePort}`;
    trustAtAccept.set(key, live.trust());
    raw.once('close', () => trustAtAccept.delete(key));
  });

  // Runs before the HTTP layer sees the socket: an unverified peer never gets a request parsed.
  server.prependListener('secureConnection', (socket: TLSSocket) => {
    const authorized = socket.authorized === true;
    const peer = readPeerCertificate(socket);
    const conn: ConnectionInfo = {
      remoteAddress: plainAddress(socket.remoteAddress),
      remotePort: socket.remotePort ?? 0,
      tlsVersion: socket.getProtocol() ?? undefined,
      peer: authorized ? peer : undefined,
      memo: new Map(),
      inflight: undefined,
    };
    // The client CA bundle and CRL this connection was verified with (see handle()).
    const acceptedKey = `${socket.remoteAddress}:${socket.remotePort}`;
    conn.memo.set(live, trustAtAccept.get(acceptedKey));
    trustAtAccept.delete(acceptedKey);
    if (live.config().auth.methods.includes('mtls') && (!authorized || !peer)) {
      const reason = classifyAuthorizationError(String(socket.authorizationError ?? ''), peer !== undefined);
      // The unverified certificate's names are logged for forensics, never used for a decision.
      record(connectionEvent({ ...conn, peer }, reason, String(socket.authorizationError ?? 'no certificate')));
      bans.recordOutcome(reason, conn, undefined);
      socket.destroy();
      return;
    }
    const banned = bans.bannedAtHandshake(conn);
    if (banned) {
      record(connectionEvent(conn, 'LIMIT_BANNED_CONNECTION', `${banned.key} is banned until ${new Date(banned.until).toISOString()}`));
      socket.destroy();
      return;
    }
    (socket as GuardSocket)[CONNECTION] = conn;
  });

  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    const conn = bareConnection(socket);
    record(connectionEvent(conn, 'TLS_HANDSHAKE_FAILED', err.code ?? err.message));
  });

  /** What interrupted a request outside the pipeline (the HTTP parser's code), for its audit event. */
  const interruptions = new WeakMap<RequestContext, string>();

  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const conn = (socket as GuardSocket)[CONNECTION];
    // A socket already answered and closed (e.g. after a timeout) reports its EOF as a second error.
    if (!conn || socket.destroyed || err.code === 'ECONNRESET' || err.code === 'EPIPE') {
      socket.destroy();
      return;
    }
    const reason: Reason = err.code === 'HPE_HEADER_OVERFLOW' ? 'HTTP_HEADERS_TOO_LARGE'
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'HTTP_TIMEOUT'
      : 'HTTP_MALFORMED';
    const ctx = conn.inflight;
    if (ctx) {
      // Mid-request (e.g. the body stalls): the request's own audit event carries the reason.
      // The head was complete, so an end of stream here is a client that left mid-body.
      const interrupted: Reason = err.code === 'HPE_INVALID_EOF_STATE' ? 'BODY_INCOMPLETE' : reason;
      ctx.interruptedBy = interrupted;
      interruptions.set(ctx, err.code ?? 'client error');
      sendRejection(ctx.res, ctx.id, new Rejection(interrupted, err.code), true);
      socket.destroySoon?.();
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    const id = randomUUID();
    const status = REASONS[reason].status === 408 ? 408 : 400;
    const bytes = writeRawRefusal(socket, status, id);
    const event = connectionEvent(conn, reason, err.code);
    event.event.action = 'replication-request';
    event.http = { request: { body: { bytes: 0 } }, response: { status_code: status, body: { bytes } } };
    event.replguard.request_id = id;
    record(event);
    bans.recordOutcome(reason, conn, undefined);
  });

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const conn = (req.socket as GuardSocket)[CONNECTION];
    if (!conn) {
      // Not set up by secureConnection (cannot happen for a TLS socket): fail closed.
      res.destroy();
      return;
    }
    const ctx: RequestContext = {
      id: randomUUID(),
      req,
      res,
      conn,
      startedAt: performance.now(),
      path: undefined,
      pop: undefined,
      credentials: [],
      body: undefined,
      entries: undefined,
      webhookId: undefined,
      webhookTimestamp: undefined,
      jti: undefined,
      tokenFingerprint: undefined,
      upstreamMs: undefined,
      responseBytes: 0,
      interruptedBy: undefined,
    };
    conn.inflight = ctx;
    // The pipeline in force now serves this whole request, even if a reload swaps it meanwhile.
    const lease = live.acquire();
    let outcome: { reason: Reason; detail: string | undefined } | undefined;
    let responseBytes = 0;
    let closed = false;
    let recorded = false;
    let watchdog: NodeJS.Timeout | undefined;
    // The one audit event is written once the response is closed and the pipeline has decided.
    // Either may come first: a client that sent `connection: close` has its socket closed
    // (nextTick) before the pipeline's promise settles (microtask).
    const finish = () => {
      if (recorded || !closed || !outcome) return;
      recorded = true;
      unrecorded.delete(forceFinish);
      clearTimeout(watchdog); // it would otherwise hold the request (and its body) until it fires
      lease.release();
      const reason = ctx.interruptedBy ?? outcome.reason;
      const detail = interruptions.get(ctx) ?? outcome.detail;
      const status = res.headersSent ? res.statusCode : 0;
      record(requestEvent(ctx, reason, status, responseBytes, performance.now() - ctx.startedAt, detail));
      bans.recordOutcome(reason, conn, ctx.pop);
    };
    const forceFinish = () => {
      closed = true;
      outcome ??= { reason: 'INTERNAL', detail: 'the pipeline had not settled when the guard stopped' };
      finish();
    };
    unrecorded.add(forceFinish);
    res.once('close', () => {
      closed = true;
      if (conn.inflight === ctx) conn.inflight = undefined;
      // Decided outside the pipeline (the HTTP parser's error, a timeout): nothing to wait for.
      if (ctx.interruptedBy) outcome ??= { reason: ctx.interruptedBy, detail: undefined };
      finish();
      // Every stage settles once its client is gone (body reads end, the upstream is bounded by
      // upstream.timeout); should one not, the event is still written, never lost.
      if (!recorded) {
        watchdog = setTimeout(() => {
          outcome ??= { reason: 'INTERNAL', detail: 'the pipeline had not settled long after the client left' };
          finish();
        }, live.config().upstream.timeout + 5000).unref();
      }
    });
    // Draining, or the client CA bundle / CRL changed since this connection's handshake: this
    // is its last request, so that the client reconnects and is verified against the new set.
    const closeAfter = draining || conn.memo.get(live) !== live.trust();
    if (closeAfter) res.setHeader('connection', 'close');

    lease.pipeline.run(ctx).then(
      () => {
        outcome ??= { reason: 'FORWARDED', detail: undefined };
        responseBytes = ctx.responseBytes;
        finish();
      },
      (err: unknown) => {
        if (err instanceof Rejection) {
          outcome ??= { reason: err.reason, detail: err.detail };
        } else {
          outcome ??= { reason: 'INTERNAL', detail: 'unexpected error; see the operational log' };
          log.error({ err, request_id: ctx.id }, 'unexpected error in the request pipeline');
        }
        const rejection = err instanceof Rejection ? err : new Rejection('INTERNAL');
        responseBytes = Buffer.byteLength(errorBody(rejection.status, ctx.id));
        sendRejection(res, ctx.id, rejection, closeAfter);
        if (rejection.closeConnection) {
          // An unread body must not be parsed as the next request: close once the answer is out.
          res.once('finish', () => req.socket.destroySoon?.());
        }
        finish();
      },
    );
  }

  try {
    await listenOrExplain(server, config.listen.host, config.listen.port, 'listen');
  } catch (err) {
    live.close();
    throw err;
  }
  listening = true;
  const port = (server.address() as { port: number }).port;

  // The admin token (admin.token_file): made once, like the admin listener (`admin` is restart-only),
  // and reloaded with the other credential files (SIGHUP, a change in its folder, the interval).
  let adminToken: ReloadableSource<AdminToken> | undefined;
  let admin: HttpServer;
  try {
    const tokenFile = config.admin.token_file;
    if (tokenFile !== undefined) {
      adminToken = createReloadableSource({
        name: 'admin token',
        load: () => loadAdminToken(tokenFile),
        paths: [tokenFile],
        onSwap: (next) => log.info({ source: 'admin token', token_fingerprint: next.fingerprint }, 'ban administration: new admin token in force'),
        log,
        onReload,
        intervalMs: config.auth.reload_interval,
      });
    }
    admin = await startAdminServer(config.admin.host, config.admin.port, {
      ready: () => listening && !draining && state.ready(),
      metrics: () => metrics.render(),
      bans,
      adminToken: () => adminToken?.current(),
      audit,
    }, log);
  } catch (err) {
    adminToken?.close();
    server.close();
    live.close();
    bans.stop();
    await state.close();
    throw err;
  }
  const adminPort = (admin.address() as { port: number }).port;
  log.info({
    listen: `${config.listen.host}:${port}`, admin: `${config.admin.host}:${adminPort}`, peers: config.peers.length,
    ban_administration: adminToken ? `admin token ${adminToken.current().fingerprint}, from any caller` : 'loopback callers only',
  }, 'guard listening');

  let shutdownPromise: Promise<void> | undefined;
  return {
    port,
    adminPort,
    ready: () => listening && !draining && state.ready(),
    reload: (trigger) => {
      live.reload(trigger);
      adminToken?.reload(trigger);
    },
    shutdown() {
      shutdownPromise ??= (async () => {
        draining = true;
        const timeout = live.config().shutdown_timeout;
        log.info({ timeout_ms: timeout }, 'draining: no new connections, finishing in-flight requests');
        await drainServer(server, timeout, log);
        listening = false;
        // Connections cut at the deadline report their requests' outcomes on the next ticks; a
        // request still waiting for the upstream then is written as it stands.
        for (let waited = 0; unrecorded.size > 0 && waited < 1000; waited += 10) await sleep(10);
        for (const force of [...unrecorded]) force();
        live.close();
        adminToken?.close();
        bans.stop();
        await state.close();
        await new Promise<void>((resolve) => admin.close(() => resolve()));
        audit.flush();
        log.info('guard stopped');
      })();
      return shutdownPromise;
    },
  };
}

function bareConnection(socket: Socket): ConnectionInfo {
  return {
    remoteAddress: plainAddress(socket.remoteAddress),
    remotePort: socket.remotePort ?? 0,
    tlsVersion: undefined,
    peer: undefined,
    memo: new Map(),
    inflight: undefined,
  };
}
