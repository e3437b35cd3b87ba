/**
 * What happens to each request the guard's TLS listener receives, from its first byte to its one
 * audit event: a context from the one factory, the pipeline in force (a lease: a reload during
 * the request does not change it), one response through the response boundary, and exactly one
 * event, written once both the response is closed and the pipeline has decided, whichever comes
 * first; never lost (a watchdog, and `recordAll()` at shutdown). Requests the HTTP layer refuses
 * before a response object exists (malformed, CONNECT, an unsupported Expect) get the same
 * generic answer and event. Every outcome is also handed to the bans (`recordOutcome`).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server } from 'node:https';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { connectionEvent, requestEvent, type AuditEvent } from '../audit/event.ts';
import type { Bans } from '../limits/bans.ts';
import type { OperationalLog } from '../log/operational.ts';
import { newRequestContext, type ConnectionInfo, type RequestContext } from '../pipeline/context.ts';
import { REASONS, Rejection, type Reason } from '../pipeline/reasons.ts';
import { errorBody, sendRejection } from '../pipeline/respond.ts';
import { writeRawRefusal } from '../service/drain.ts';
import type { LiveGuard } from './reload.ts';
import type { TlsGate } from './tls-gate.ts';

export interface RequestHandlingDeps {
  readonly gate: TlsGate;
  /** The config and pipeline in force (guard/reload.ts). */
  readonly live: () => LiveGuard;
  readonly bans: Bans;
  readonly log: OperationalLog;
  /** Writes one audit event (and the metrics derived from it). */
  readonly record: (event: AuditEvent) => void;
  /** True once the guard drains: each request is then its connection's last. */
  readonly draining: () => boolean;
}

export interface RequestHandling {
  /** Requests whose audit event is not written yet. */
  unrecorded(): number;
  /** Writes the event of every request still unrecorded, as it stands (shutdown). */
  recordAll(): void;
}

export function attachRequestHandling(server: Server, deps: RequestHandlingDeps): RequestHandling {
  const { gate, live, bans, log, record, draining } = deps;
  /**
   * Requests whose audit event is not written yet, each with a way to write it now: shutdown
   * writes every one before it returns, so that the audit stream can end and the process exit.
   */
  const unrecorded = new Set<() => void>();
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
  event.replguard = { ...event.replguard, request_id: id };
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
  const lease = live().acquire();
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
    const reason = ctx.interruptedBy ?? outcome.reason;
    const detail = interruptions.get(ctx) ?? outcome.detail;
    const status = res.headersSent ? res.statusCode : 0;
    lease.pipeline.settled(ctx, status);
    lease.release();
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
      }, live().config().upstream.timeout + 5000).unref();
    }
  });
  // Draining: this is the connection's last request.
  const closeAfter = draining();
  if (closeAfter) res.setHeader('connection', 'close');

  (refusal ? Promise.reject(refusal) : lease.pipeline.run(ctx)).then(
    () => {
      outcome ??= { reason: ctx.answeredAs ?? 'FORWARDED', detail: undefined };
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

  server.on('request', (req: IncomingMessage, res: ServerResponse) => handle(req, res));
  return {
    unrecorded: () => unrecorded.size,
    recordAll: () => {
      for (const force of [...unrecorded]) force();
    },
  };
}
