/**
 * The guard (role: backup). Wires the TLS listener, its TLS gate (guard/tls-gate.ts: what is
 * decided before the first HTTP byte), the pipeline (guard/pipeline.ts) and the admin listener; it
 * decides nothing itself. Per request: build the context, run the stages, send a refusal through
 * the one response boundary, write exactly one audit event. Requests the HTTP layer refuses
 * before a response object exists (malformed, CONNECT) get the same generic answer and event.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AuditLog } from '../audit/audit-log.ts';
import { connectionEvent, reloadEvent, requestEvent, type AuditEvent } from '../audit/event.ts';
import type { Config } from '../config/schema.ts';
import { Bans } from '../limits/bans.ts';
import type { OperationalLog } from '../log/operational.ts';
import { createMetrics, type Metrics } from '../metrics/metrics.ts';
import { newRequestContext, type ConnectionInfo, type RequestContext } from '../pipeline/context.ts';
import { REASONS, Rejection, type Reason } from '../pipeline/reasons.ts';
import { errorBody, sendRejection } from '../pipeline/respond.ts';
import { createRepeatAggregator } from '../audit/repeats.ts';
import { createSharedState } from '../store/create.ts';
import type { LoadedConfig } from '../config/load.ts';
import { createReloadableSource, type ReloadableSource, type ReloadListener, type ReloadTrigger } from '../reload/source.ts';
import { loadAdminToken, type AdminToken } from '../service/admin-access.ts';
import { startAdminServer } from '../service/admin.ts';
import { drainServer, writeRawRefusal } from '../service/drain.ts';
import { listenerOptions, listenOrExplain } from '../service/listen.ts';
import { createLiveGuard, type LiveGuard } from './reload.ts';
import { attachTlsGate } from './tls-gate.ts';

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
  /** Re-reads the config file, the TLS material and the credential files (guard/reload.ts); never throws. */
  reload(trigger: ReloadTrigger): void;
  /** Stops accepting, lets in-flight requests finish up to `shutdown_timeout`, then closes. */
  shutdown(): Promise<void>;
}

/** Most bans read per scrape for `replguard_bans_active`. */
const BANS_ACTIVE_SCAN = 10_000;

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
  // The peer index comes from the config in force at each call (a reload changes it).
  let live!: LiveGuard;
  const bans = new Bans(config, state, { now, audit, log, peers: () => live.peers() });
  bans.start();
  // The nonce store counted by cause and sized on every scrape; the bans in force, read from the
  // store (shared with other replicas) on every scrape, at most BANS_ACTIVE_SCAN of them.
  const nonceStore = metrics.instrumentNonceStore(state.nonces);
  metrics.registerGaugeCollector('replguard_bans_active', 'Active bans (addresses and POPs), as the ban store holds them; at most 10000 are counted.', async () => {
    const t = now();
    return (await state.bans.list(BANS_ACTIVE_SCAN)).filter((ban) => ban.until > t).length;
  });

  // Every reload result is counted and, unless nothing changed, audited (a failure is an alert,
  // and so is a reload that took credentials out of force: CREDENTIAL_REMOVED).
  const onReload: ReloadListener = (report) => {
    if (report.outcome !== 'unchanged') {
      const result = report.outcome === 'failed' ? 'failure' : 'success';
      metrics.countReload(result);
      const removed = report.removed ?? [];
      const what = removed.length > 0 ? `: removed ${removed.map((r) => `${r.key} (${r.file})`).join(', ')}` : '';
      record(reloadEvent(result, report.trigger, `${report.source}${report.error !== undefined ? `: ${report.error}` : what}`, removed));
    }
    deps.onReload?.(report);
  };

  // Config, TLS context and pipeline in force; they change on reload (guard/reload.ts).
  try {
    live = createLiveGuard(config, { log, now, source: deps.source, onReload, shared: { nonceStore, bans, limiters: state.limiters } });
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

  const limits = config.limits;
  const server: Server = createServer(
    {
      ...live.tlsOptions(),
      requestCert: true,
      // Chains are verified by the runtime during the handshake AND by the TLS gate after it
      // (tls/client-trust.ts), which names the precise reason before the socket closes.
      rejectUnauthorized: false,
      sessionTimeout: 300,
      // The gate's own handshake deadline (limits.handshake_timeout) cuts first; this is Node's backstop.
      handshakeTimeout: limits.handshake_timeout + 1000,
      // A missing Host is refused by the framing stage, with the security headers and an audit event.
      requireHostHeader: false,
      ...listenerOptions(limits),
    },
    (req, res) => handle(req, res),
  );
  live.serve(server);

  // Connection-level refusals (accept, TLS): aggregated per client and reason in the audit
  // trail, each one counted in the metrics.
  const repeats = createRepeatAggregator(config.audit.repeat_window, now, {
    count: (event) => metrics.observe(event),
    write: (event) => audit.write(event),
  });
  const gate = attachTlsGate(server, { now, config: () => live.config(), trust: () => live.clientTrust(), bans, repeats });

  /** What interrupted a request outside the pipeline (the HTTP parser's code), for its audit event. */
  const interruptions = new WeakMap<RequestContext, string>();

  /** A refusal written straight to the socket (no response object exists), with its one audit event. */
  const refuseRaw = (socket: Socket, conn: ConnectionInfo, reason: Reason, detail: string | undefined, request?: IncomingMessage) => {
    const id = randomUUID();
    const status = REASONS[reason].status;
    const bytes = writeRawRefusal(socket, status, id);
    const event = connectionEvent(conn, reason, detail);
    event.event.action = 'replication-request';
    event.http = { request: { body: { bytes: 0 } }, response: { status_code: status, body: { bytes } } };
    if (request?.method !== undefined) event.http.request.method = request.method.slice(0, 16);
    event.replguard.request_id = id;
    record(event);
    bans.recordOutcome(reason, conn, undefined);
  };

  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const conn = gate.connectionOf(socket);
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
    refuseRaw(socket, conn, reason, err.code);
  });

  // CONNECT (authority-form target, a tunnel): never served. Node hands it to this event
  // instead of the request handler; without a listener the socket would close unanswered.
  server.on('connect', (req: IncomingMessage, socket: Socket) => {
    const conn = gate.connectionOf(socket);
    if (!conn) {
      socket.destroy();
      return;
    }
    refuseRaw(socket, conn, 'ROUTE_TARGET_INVALID', 'CONNECT (authority-form target) is never served', req);
  });

  // An Expect other than 100-continue: refused through the pipeline's response boundary (417),
  // with its audit event (Node would answer 417 itself, without either).
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => handle(req, res, new Rejection('HTTP_EXPECTATION_FAILED', 'an Expect field other than 100-continue', { closeConnection: true })));

  function handle(req: IncomingMessage, res: ServerResponse, refusal?: Rejection): void {
    const conn = gate.connectionOf(req.socket);
    if (!conn) {
      // Not admitted by the TLS gate (cannot happen for a TLS socket): fail closed.
      res.destroy();
      return;
    }
    const ctx = newRequestContext({ id: randomUUID(), req, res, conn, startedAt: performance.now() });
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
      // A credential of this request verified (ctx.pop is only ever set by one that did): the
      // connection leaves the unauthenticated pool.
      if (ctx.pop !== undefined) gate.authenticated(conn);
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
    // Draining: this is the connection's last request.
    const closeAfter = draining;
    if (closeAfter) res.setHeader('connection', 'close');

    (refusal ? Promise.reject(refusal) : lease.pipeline.run(ctx)).then(
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
        gate.close();
        repeats.flush();
        repeats.close();
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
