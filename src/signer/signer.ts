/**
 * The signer (role: primary). The unmodified primary's replication client posts plain HTTP to
 * this loopback listener; for each request the signer
 *  1. accepts only `POST /api/replication/apply` (the guard's route codes for anything else),
 *  2. reads the body bounded by limits.max_body_bytes (the guard's body stage),
 *  3. checks it against the guard's body contract and sets `source_pop` (signer/body.ts),
 *  4. one webhook-id per batch; per attempt the injected clock's time, the body bytes for them,
 *     the Standard Webhooks signature over exactly those bytes, the credential (signer/credentials.ts),
 *  5. sends it over verified mTLS (signer/tls-client.ts); retries connection failures, timeouts and
 *     429/502/503/504 on the integer schedule (signer/retry.ts), but an attempt the backup may
 *     have received (sent, then a timeout, a broken connection, 502 or 504) only to a guard
 *     that deduplicates; relays the final answer,
 *  6. writes one audit event per attempt (audit/signer-event.ts).
 * It never accepts replication from the network: the listener is loopback unless the risk is
 * named in the config.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { Agent } from 'node:https';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import type { AuditLog } from '../audit/audit-log.ts';
import { requestPath } from '../audit/event.ts';
import { signerEvent, type SignerAuditEvent, type SignerEventInput } from '../audit/signer-event.ts';
import { SIGNER_ROUTE, type PrimaryConfig } from '../config/primary-schema.ts';
import { createBodyStage } from '../limits/body.ts';
import type { OperationalLog } from '../log/operational.ts';
import { newConnection, newRequestContext, type RequestContext } from '../pipeline/context.ts';
import { REASONS, Rejection, type Reason } from '../pipeline/reasons.ts';
import { sendRejection, setSecurityHeaders } from '../pipeline/respond.ts';
import { downstreamResponseHeaders } from '../proxy/headers.ts';
import { startRegistryMonitor, type RegistryMonitor } from '../registry/monitor.ts';
import { createRegistryStage } from '../registry/registry-stage.ts';
import { createReloadableSource, type ReloadTrigger } from '../reload/source.ts';
import { jsonBounds } from '../replay/body-contract.ts';
import { formatBatchId, newEpoch, type BatchId } from '../replay/batch-id.ts';
import { signRequest } from '../replay/signing.ts';
import { createSignerMetrics } from '../metrics/signer-metrics.ts';
import { startAdminServer } from '../service/admin.ts';
import { clientErrorReason, isClientGone } from '../service/client-error.ts';
import { drainServer, plainAddress, writeRawRefusal } from '../service/drain.ts';
import { applyListenerLimits, listenerOptions, listenOrExplain } from '../service/listen.ts';
import { sendAttempt, type AttemptOutcome, type AttemptTls } from './attempt.ts';
import { prepareBody, type PreparedBody } from './body.ts';
import { attemptCredential } from './credentials.ts';
import { credentialNotAfter, loadSignerMaterial, signerMaterialPaths, type SignerMaterial } from './material.ts';
import { guardDeduplicates, holdBoundsMs, MAYBE_DELIVERED_STATUSES, parseRetryAfter, retryDelayMs } from './retry.ts';
import { backupTarget, createBackupAgent } from './tls-client.ts';

/** Waits `ms`; rejects (any error) when `signal` aborts. Injected so tests need not wait. */
export type Sleep = (ms: number, signal: AbortSignal) => Promise<void>;

export interface SignerDeps {
  readonly audit: AuditLog;
  readonly log: OperationalLog;
  /** Epoch ms; webhook-timestamp and JWT iat/exp come from it. */
  readonly now?: () => number;
  /** The wait between attempts. Default: a real timer. */
  readonly sleep?: Sleep;
}

export interface Signer {
  /** The bound port of the primary-facing listener (useful with port 0). */
  readonly port: number;
  readonly adminPort: number;
  ready(): boolean;
  /** Re-reads the signing keys, the credential and the TLS client material; never throws. */
  reload(trigger: ReloadTrigger): void;
  /** Stops accepting, cuts retry waits short (503), lets attempts in flight finish up to shutdown_timeout. */
  shutdown(): Promise<void>;
}

const realSleep: Sleep = (ms, signal) => delay(ms, undefined, { signal });

export async function startSigner(config: Readonly<PrimaryConfig>, deps: SignerDeps): Promise<Signer> {
  const { audit, log } = deps;
  const now = deps.now ?? Date.now;
  const sleep = deps.sleep ?? realSleep;
  // The control plane's registry must list this POP as a primary that replicates to backup.id;
  // otherwise a ConfigError (exit 2) before anything listens.
  const registry: RegistryMonitor | undefined = config.control_plane
    ? await startRegistryMonitor(config.control_plane, { popId: config.pop_id, role: 'primary', backupId: config.backup.id }, { now, log, record: (event) => audit.write(event) })
    : undefined;
  const registryStage = registry ? createRegistryStage(() => registry.state()) : undefined;
  const serving = () => registry?.state().serving ?? true;
  const target = backupTarget(config.backup);
  const maxAttempts = config.retry.max_retries + 1;
  const bodyStage = createBodyStage(config);
  const bodyBounds = jsonBounds(config.limits);
  const metrics = createSignerMetrics();
  /** Every signer event goes through here: written, then counted, so the two agree. */
  const record = (event: SignerAuditEvent) => {
    audit.write(event);
    metrics.observe(event);
  };

  let agent: Agent | undefined;
  let agentFingerprint = '';
  const agentFor = (material: SignerMaterial): Agent => {
    if (!agent || agentFingerprint !== material.tls.fingerprint) {
      const old = agent;
      agent = createBackupAgent(target, material.tls);
      agentFingerprint = material.tls.fingerprint;
      // Connections of the old material: idle ones close now, busy ones when their attempt ends.
      if (old) retireAgent(old);
    }
    return agent;
  };
  let material: ReturnType<typeof createReloadableSource<SignerMaterial>>;
  try {
    material = createReloadableSource({
      name: 'signer material',
      load: () => loadSignerMaterial(config, now()),
      paths: signerMaterialPaths(config),
      log,
      intervalMs: config.reload_interval,
    });
  } catch (err) {
    registry?.close();
    throw err;
  }
  agentFor(material.current());
  metrics.readClientCertificate(() => material.current().tls.client);

  let draining = false;
  let listening = false;
  /**
   * Whether the guard's last answer said it deduplicates (x-replguard-dedup: on): then a retry
   * of an attempt that may have been delivered is safe. False until it says so.
   */
  let guardDedups = false;
  /**
   * This process's epoch and the last batch number given out in it (issue 21 part 1): random
   * at every start, so numbers never repeat under one epoch even when the signer restarts. A
   * batch that ends without the guard's answer (the signer gave up, the primary left, the
   * registry or an expired credential stopped it) starts a new epoch: its number never
   * reached the backup, so the guard reports it as a gap of the old epoch, and a guard with
   * replay.sequence.order: refuse forwards the next batches, which a hole in their own epoch
   * would stop.
   */
  let epoch = newEpoch();
  let lastSequence = 0;
  /** Aborted on shutdown: every retry wait ends at once. */
  const drain = new AbortController();

  const server: HttpServer = createServer(
    {
      ...listenerOptions(config.limits),
    },
    (req, res) => {
      handle(req, res).catch((err: unknown) => {
        log.error({ err }, 'unexpected error in the signer');
        if (!res.headersSent) sendRejection(res, randomUUID(), new Rejection('INTERNAL'), true);
        else res.destroy();
      });
    },
  );
  applyListenerLimits(server, config.limits);

  const base = (ctx: RequestContext) => ({
    client: { ip: ctx.conn.remoteAddress, port: ctx.conn.remotePort },
    path: ctx.path ?? requestPath(ctx.req.url),
    requestId: ctx.id,
    pop: config.pop_id,
    backup: { id: config.backup.id, address: target.hostname, port: target.port },
    maxAttempts,
  });

  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (isClientGone(err, socket) || !socket.writable) {
      socket.destroy();
      return;
    }
    const reason = clientErrorReason(err.code, false);
    const id = randomUUID();
    const status = REASONS[reason].status;
    const client = { ip: plainAddress(socket.remoteAddress), port: socket.remotePort ?? 0 };
    writeRawRefusal(socket, status, id);
    record(signerEvent({
      reason, durationMs: 0, client, path: undefined, requestId: id,
      pop: config.pop_id, backup: { id: config.backup.id, address: target.hostname, port: target.port }, attempt: 0, maxAttempts,
      final: true, status, detail: err.code,
    }));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const conn = newConnection({ remoteAddress: plainAddress(req.socket.remoteAddress), remotePort: req.socket.remotePort ?? 0 });
    const ctx = newRequestContext({ id: randomUUID(), req, res, conn, startedAt: performance.now(), pop: config.pop_id });
    if (draining) res.setHeader('connection', 'close');
    const answered = metrics.requestStarted();
    res.once('close', () => answered((performance.now() - ctx.startedAt) / 1000));

    // Steps 1-3: refused here, nothing is sent; one event with attempt 0.
    let prepared: PreparedBody;
    try {
      registryStage?.run(ctx);
      checkRoute(req);
      ctx.path = SIGNER_ROUTE.path;
      await bodyStage.run(ctx);
      prepared = prepareBody(ctx.body!, config.pop_id, bodyBounds);
    } catch (err) {
      if (!(err instanceof Rejection)) throw err;
      sendRejection(res, ctx.id, err, draining);
      if (err.closeConnection) res.once('finish', () => req.socket.destroySoon?.());
      record(signerEvent({ ...base(ctx), reason: err.reason, durationMs: performance.now() - ctx.startedAt, attempt: 0, final: true, status: err.status, ...(err.detail !== undefined ? { detail: err.detail } : {}) }));
      return;
    }

    // The primary hanging up, or shutdown, ends the retry waits.
    const stop = new AbortController();
    const onDrain = () => stop.abort('SHUTTING_DOWN');
    drain.signal.addEventListener('abort', onDrain, { once: true });
    res.once('close', () => {
      if (!res.writableEnded) stop.abort('SIGNER_PRIMARY_GONE');
    });
    try {
      await deliver(ctx, prepared, stop.signal);
    } catch (err) {
      // Anything unexpected (never a refusal): logged with its stack, audited, never echoed.
      log.error({ err, request_id: ctx.id }, 'unexpected error in the signer');
      if (!res.headersSent) sendRejection(res, ctx.id, new Rejection('INTERNAL'), true);
      else res.destroy();
      record(signerEvent({ ...base(ctx), reason: 'INTERNAL', durationMs: performance.now() - ctx.startedAt, attempt: 0, final: true, status: 500, detail: 'unexpected error; see the operational log' }));
    } finally {
      drain.signal.removeEventListener('abort', onDrain);
    }
  }

  /** Steps 4-6: the attempts. */
  async function deliver(ctx: RequestContext, prepared: PreparedBody, stop: AbortSignal): Promise<void> {
    const { res } = ctx;
    // The batch's number, and one webhook-id that carries it for every attempt: a guard with
    // upstream.deduplicate knows a retry by it (each attempt still has its own timestamp,
    // signature and token), and the signature covers the number.
    const batch: BatchId = { epoch, sequence: ++lastSequence };
    let answered = false;
    try {
      await attempts(batch);
    } finally {
      if (!answered && batch.epoch === epoch) {
        epoch = newEpoch();
        lastSequence = 0;
      }
    }

    async function attempts(batch: BatchId): Promise<void> {
      const batchWebhookId = formatBatchId(batch);
      let webhookId = batchWebhookId;
      for (let attempt = 1; ; attempt++) {
        // A retry after the registry stopped confirming this role sends nothing.
        const registryState = registry?.state();
        if (registryState && !registryState.serving) {
          if (!res.destroyed) sendRejection(res, ctx.id, new Rejection(registryState.reason, registryState.detail), true);
          audit.write(signerEvent({ ...base(ctx), webhookId, batch, reason: registryState.reason, durationMs: 0, attempt, final: true, status: res.destroyed ? 0 : REASONS[registryState.reason].status, detail: registryState.detail }));
          return;
        }
        const started = performance.now();
        const m = material.current();
        // Finding 5: the secret's own end holds at run time too, not only at load and reload.
        const notAfter = credentialNotAfter(m.credential);
        if (notAfter !== undefined && notAfter <= now()) {
          const detail = `the credential expired at ${new Date(notAfter).toISOString()}; load a new one`;
          if (!res.destroyed) sendRejection(res, ctx.id, new Rejection('SIGNER_CREDENTIAL_EXPIRED', detail), true);
          record(signerEvent({ ...base(ctx), webhookId, batch, reason: 'SIGNER_CREDENTIAL_EXPIRED', durationMs: 0, attempt, final: true, status: res.destroyed ? 0 : REASONS.SIGNER_CREDENTIAL_EXPIRED.status, detail }));
          return;
        }
        // A guard that deduplicates answers a retry of the batch's id from its record; any other
        // may have recorded the first attempt's nonce (e.g. its backup answered 503), so a retry
        // to it gets an id of its own, which still carries the batch's number.
        if (attempt > 1) webhookId = guardDedups ? batchWebhookId : formatBatchId(batch, attempt);
        const timestamp = Math.floor(now() / 1000);
        const body = prepared.render(webhookId, timestamp);
        const credential = await attemptCredential(m.credential, config, now());
        // A large batch is signed in slices (HMAC) or off the main thread (Ed25519), so it does not hold up other requests.
        const signature = await signRequest(m.signKeys, body, webhookId, String(timestamp));
        const headers = {
          host: target.host,
          'content-type': 'application/json',
          'content-length': body.length,
          ...signature,
          ...(credential.authorization !== undefined ? { authorization: credential.authorization } : {}),
        };
        const outcome: AttemptOutcome = await sendAttempt({ agent: agentFor(m), target, path: SIGNER_ROUTE.path, headers, body, timeoutMs: config.backup.timeout, onSocket: metrics.guardConnection });
        if (outcome.tls.server) metrics.guardCertificate(outcome.tls.server);
        const event = (e: Pick<SignerEventInput, 'reason' | 'final'> & Partial<SignerEventInput>, tls: AttemptTls) => {
          record(signerEvent({
            ...base(ctx), attempt, durationMs: performance.now() - started, sentBytes: body.length, webhookId, batch,
            ...(credential.jti !== undefined ? { jti: credential.jti } : {}),
            ...(credential.fingerprint !== undefined ? { tokenFingerprint: credential.fingerprint } : {}),
            ...(prepared.entries !== undefined ? { entries: prepared.entries } : {}),
            tls: { ...(tls.version !== undefined ? { version: tls.version } : {}), ...(tls.server ? { server: tls.server } : {}) },
            ...e,
          }));
        };

        if (outcome.kind === 'answer') {
          // The guard answered: whatever it said, this number reached it and is settled there.
          answered = true;
          const upRes = outcome.res;
          guardDedups = guardDeduplicates(upRes.headers);
          const status = upRes.statusCode ?? 502;
          const reason: Reason = status >= 200 && status < 300 ? 'SIGNER_DELIVERED' : 'SIGNER_BACKUP_REFUSED';
          const backupRequestId = header(upRes, 'x-replguard-request-id');
          if (res.destroyed) {
            upRes.resume();
            event({ reason: 'SIGNER_PRIMARY_GONE', final: true, status: 0, backupStatus: status, detail: `the guard answered ${status} after the primary had gone`, ...(backupRequestId ? { backupRequestId } : {}) }, outcome.tls);
            return;
          }
          setSecurityHeaders(res, ctx.id);
          const relayed = downstreamResponseHeaders(upRes.rawHeaders);
          res.writeHead(status, { ...relayed, ...(backupRequestId ? { 'x-replguard-backup-request-id': backupRequestId } : {}) });
          upRes.pipe(res);
          const end = await outcome.done;
          if (!end.complete) res.destroy();
          event({
            reason, final: true, status, backupStatus: status,
            ...(backupRequestId ? { backupRequestId } : {}),
            ...(end.complete ? {} : { detail: end.detail ?? 'the answer was cut off' }),
          }, outcome.tls);
          return;
        }

        const reason: Reason = outcome.kind === 'retryable' ? 'SIGNER_BACKUP_UNAVAILABLE' : outcome.reason;
        if (outcome.kind === 'retryable') guardDedups = outcome.dedup;
        // An attempt the backup may have received is sent again only to a guard that
        // deduplicates: an unmodified backup cannot be assumed idempotent.
        const maybeDelivered = outcome.kind === 'retryable' ? MAYBE_DELIVERED_STATUSES.has(outcome.status) : outcome.sent;
        const unsafe = maybeDelivered && !guardDedups;
        const retryable = (outcome.kind === 'retryable' || outcome.retryable) && !unsafe;
        const extra = outcome.kind === 'retryable'
          ? { backupStatus: outcome.status, detail: `the guard answered ${outcome.status}`, ...(outcome.backupRequestId ? { backupRequestId: outcome.backupRequestId } : {}) }
          : { detail: outcome.detail };
        if (!retryable || attempt >= maxAttempts || stop.aborted) {
          const rejection = new Rejection(reason, extra.detail);
          if (!res.destroyed) sendRejection(res, ctx.id, rejection, draining);
          const why = unsafe ? '; not retried: the backup may have the batch and the guard does not deduplicate'
            : retryable && attempt >= maxAttempts ? '; no retry left' : '';
          event({ reason, final: true, status: res.destroyed ? 0 : rejection.status, ...extra, detail: `${extra.detail}${why}` }, outcome.tls);
          return;
        }
        const wait = retryDelayMs(attempt, outcome.kind === 'retryable' ? parseRetryAfter(outcome.retryAfter, now()) : undefined);
        event({ reason, final: false, retryInMs: wait, ...extra }, outcome.tls);
        try {
          await sleep(wait, stop);
        } catch {
          // Aborted: the primary has gone, or the signer is shutting down.
        }
        if (stop.aborted) {
          const why: Reason = stop.reason === 'SHUTTING_DOWN' ? 'SHUTTING_DOWN' : 'SIGNER_PRIMARY_GONE';
          if (!res.destroyed) sendRejection(res, ctx.id, new Rejection(why), true);
          record(signerEvent({ ...base(ctx), webhookId, batch, reason: why, durationMs: 0, attempt, final: true, status: res.destroyed ? 0 : REASONS[why].status, detail: `no attempt after ${attempt}` }));
          return;
        }
      }
    }
  }

  try {
    await listenOrExplain(server, config.listen.host, config.listen.port, 'listen');
  } catch (err) {
    registry?.close();
    material.close();
    throw err;
  }
  listening = true;
  const port = (server.address() as { port: number }).port;
  let admin: HttpServer;
  try {
    admin = await startAdminServer(config.admin.host, config.admin.port, { ready: () => listening && !draining && serving(), metrics: () => metrics.render() }, log);
  } catch (err) {
    server.close();
    registry?.close();
    material.close();
    throw err;
  }
  const adminPort = (admin.address() as { port: number }).port;
  const hold = holdBoundsMs(config.retry.max_retries, config.backup.timeout);
  log.info({
    listen: `${config.listen.host}:${port}`, admin: `${config.admin.host}:${adminPort}`, backup: config.backup.url, backup_id: config.backup.id,
    max_retries: config.retry.max_retries, hold_schedule_ms: hold.schedule, hold_worst_ms: hold.worst,
  }, 'signer listening');

  let shutdownPromise: Promise<void> | undefined;
  return {
    port,
    adminPort,
    ready: () => listening && !draining && serving(),
    reload: (trigger) => {
      material.reload(trigger);
      agentFor(material.current());
      void registry?.refresh(trigger);
    },
    shutdown() {
      shutdownPromise ??= (async () => {
        draining = true;
        log.info({ timeout_ms: config.shutdown_timeout }, 'draining: no new requests, retry waits end now, attempts in flight finish');
        const drained = drainServer(server, config.shutdown_timeout, log);
        drain.abort();
        await drained;
        listening = false;
        registry?.close();
        material.close();
        agent?.destroy();
        await new Promise<void>((resolve) => admin.close(() => resolve()));
        audit.flush();
        log.info('signer stopped');
      })();
      return shutdownPromise;
    },
  };
}

/** The one route: anything else gets the guard's route codes (nothing is sent). */
function checkRoute(req: IncomingMessage): void {
  const target = req.url ?? '';
  const q = target.indexOf('?');
  const path = q === -1 ? target : target.slice(0, q);
  if (path !== SIGNER_ROUTE.path) throw new Rejection('ROUTE_NOT_FOUND', 'the signer serves only POST /api/replication/apply', { closeConnection: true });
  if (req.method !== SIGNER_ROUTE.method) throw new Rejection('ROUTE_METHOD_NOT_ALLOWED', `${req.method ?? '?'} is not POST`, { allow: [SIGNER_ROUTE.method], closeConnection: true });
  if (q !== -1) throw new Rejection('ROUTE_QUERY_NOT_ALLOWED', 'the replication API takes no query', { closeConnection: true });
}

function header(res: IncomingMessage, name: string): string | undefined {
  const v = res.headers[name];
  return typeof v === 'string' ? v : undefined;
}

/** Closes an agent's idle connections now and each busy one when its attempt ends (keepSocketAlive is Node's documented hook). */
function retireAgent(old: Agent): void {
  old.keepSocketAlive = () => false;
  for (const sockets of Object.values(old.freeSockets)) for (const s of sockets ?? []) s.destroy();
}
