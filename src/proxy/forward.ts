/**
 * The last stage: sends the checked request to the upstream over a keep-alive pool and relays
 * the answer. Upstream unreachable (or answering malformed HTTP) is 502, slower than
 * `upstream.timeout` is 504, both generic to the client and precise in the audit log.
 *
 * Forwarding uses undici's `Pool.dispatch` (callbacks, no streams or promises per request): the
 * body is already buffered by the body stage, so nothing is left to stream. Measured with
 * `bench/` on 1 KiB requests, the forwarding hop cost ~125 µs of CPU per request through
 * `node:http` with a keep-alive Agent and ~35 µs through `Pool.dispatch`; the `http-proxy-min`
 * target of bench/ (a minimal `http-proxy` mTLS proxy) measures at 5-9x nginx.
 *
 * What crosses: only allow-listed headers either way (proxy/headers.ts); interim 1xx answers are
 * skipped (proxy/interim.ts); an upstream 5xx reaches the client as the same status with the
 * generic body, unless `upstream.relay_error_bodies` (its status and size are audited).
 */
import { performance } from 'node:perf_hooks';
import { buildConnector, Pool, type Dispatcher } from 'undici';
import type { Config } from '../config/schema.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { Rejection } from '../pipeline/reasons.ts';
import { errorBody, setSecurityHeaders } from '../pipeline/respond.ts';
import { need, type Stage } from '../pipeline/stage.ts';
import type { OperationalLog } from '../log/operational.ts';
import type { DeliveryStore } from '../store/store.ts';
import { createDelivery, type Delivery, type DeliveryOutcome } from './delivery.ts';
import { downstreamResponseHeaders, requestHeaderPolicy, upstreamRequestHeaders } from './headers.ts';
import { skipInterimResponses } from './interim.ts';

export interface ForwardStage extends Stage {
  /** Closes the upstream connections (shutdown). */
  close(): void;
}

export interface ForwardOptions {
  /**
   * Lower-case request header names consumed by earlier stages (credentials): never forwarded
   * (no client header is unless allow-listed), and not counted as dropped.
   */
  readonly strippedHeaders?: ReadonlySet<string>;
  /** Where upstream.deduplicate keeps its records (the shared state's); required when it is set. */
  readonly deliveries?: DeliveryStore;
  readonly log?: OperationalLog;
}

/** Responses up to this size are relayed in one write (head and body in one TLS record). */
const COALESCE_BYTES = 64 * 1024;

/** undici's codes for "the upstream took longer than upstream.timeout". */
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** Failures before a connection to the upstream existed: the request was certainly not sent. */
const NOT_SENT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

export function createForwardStage(config: Pick<Config, 'upstream'>, options: ForwardOptions = {}): ForwardStage {
  const url = new URL(config.upstream.url);
  const dedup = config.upstream.deduplicate;
  if (dedup && (!options.deliveries || !options.log)) throw new Error('upstream.deduplicate is set but no delivery store was given to createForwardStage');
  const delivery: Delivery | undefined = dedup ? createDelivery(dedup, config.upstream.relay_error_bodies, { store: options.deliveries!, log: options.log! }) : undefined;
  const timeout = config.upstream.timeout;
  const stripped = options.strippedHeaders ?? new Set<string>();
  const policy = requestHeaderPolicy(config.upstream.forward_headers);
  const relayErrorBodies = config.upstream.relay_error_bodies;
  const connector = buildConnector({ timeout });
  const pool = new Pool(url.origin, {
    connections: 256,
    // One request per connection at a time: proxy/interim.ts relies on it.
    pipelining: 1,
    connect: (opts, callback) => connector(opts, (...result) => {
      if (result[1]) skipInterimResponses(result[1]);
      callback(...result);
    }),
    headersTimeout: timeout,
    bodyTimeout: timeout,
  });

  return {
    name: 'forward',
    // Forwarded only once every check ran: the body contract is the last of them.
    needs: ['pop', 'path', 'body', 'contract'],
    close: () => {
      pool.destroy().catch(() => undefined);
    },
    async run(ctx: RequestContext) {
      // A webhook-id seen before is only ever let on to here for its delivery record to judge.
      if (ctx.nonceReused && !delivery) throw new Rejection('REPLAY_NONCE_REUSED', 'webhook-id already used by this POP within the window');
      const body = need(ctx, 'body', 'forward');
      const path = need(ctx, 'path', 'forward');
      const { headers, dropped } = upstreamRequestHeaders(ctx.req.rawHeaders, url.host, body.length, {
        pop: need(ctx, 'pop', 'forward'),
        requestId: ctx.id,
        certSha256: ctx.conn.peer?.sha256 ?? '',
        clientAddress: ctx.conn.remoteAddress,
      }, policy, stripped);
      ctx.headersDropped = dropped;
      // Claimed last: nothing between the claim and the dispatch can refuse the request.
      const decision = delivery ? await delivery.begin(ctx) : undefined;
      if (decision?.kind === 'answered') return;
      const record = decision?.kind === 'forward' ? decision : undefined;
      await new Promise<void>((resolve, reject) => {
        pool.dispatch(
          { origin: url.origin, method: ctx.req.method as Dispatcher.HttpMethod, path, headers, body },
          new RelayHandler(ctx, timeout, relayErrorBodies, resolve, reject, delivery && record ? {
            settle: (outcome) => record.settle(outcome),
            headers: delivery.headers,
            maxAnswerBytes: delivery.maxAnswerBytes,
            rejection: delivery.rejection,
          } : undefined),
        );
      });
    },
  };
}

/** What the relay tells the delivery record (upstream.deduplicate), and the headers it adds. */
interface RelayRecord {
  settle(outcome: DeliveryOutcome): Promise<void>;
  readonly headers: Readonly<Record<string, string>>;
  readonly maxAnswerBytes: number;
  rejection(reason: 'UPSTREAM_TIMEOUT' | 'UPSTREAM_ABORTED' | 'UPSTREAM_UNAVAILABLE', detail: string): Rejection;
}

/**
 * One upstream exchange. Before the response starts, a failure rejects (the pipeline answers
 * 502/504); after, the client connection is cut and the reason noted for the audit event.
 */
class RelayHandler implements Dispatcher.DispatchHandler {
  private readonly sentAt = performance.now();
  private started = false;
  /** An upstream 5xx whose body is read and counted, and answered with the generic body. */
  private replaced = false;
  private status = 0;
  private contentType: string | undefined;
  private headers: Record<string, string | string[]> = {};
  /** The declared response length, when there is one. */
  private expectedBytes = -1;
  /** Response body held back until it ends or outgrows COALESCE_BYTES. */
  private held: Buffer[] | undefined = [];
  private heldBytes = 0;

  /** The answer body kept for the delivery record, up to its bound (undefined once past it). */
  private recorded: Buffer[] | undefined = [];
  private recordedBytes = 0;

  constructor(
    private readonly ctx: RequestContext,
    private readonly timeout: number,
    private readonly relayErrorBodies: boolean,
    private readonly resolve: () => void,
    private readonly reject: (rejection: Rejection) => void,
    private readonly record?: RelayRecord,
  ) {}

  /** Settles the delivery record (when there is one), then ends the stage. */
  private finish(outcome: DeliveryOutcome, end: () => void): void {
    if (!this.record) {
      end();
      return;
    }
    this.record.settle(outcome).then(end, end);
  }

  /** Present so that undici drives this handler through its current (controller) interface. */
  onRequestStart(): void {}

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    // 1xx interim answers (other than the 101 a POST never gets) are not relayed; proxy/interim.ts
    // removes them before undici reads them, this is the second line.
    if (statusCode < 200) return;
    this.started = true;
    // The client left mid-response: stop reading the upstream's (a paused relay would hold
    // its pooled connection until bodyTimeout).
    this.ctx.res.once('close', () => {
      if (!this.ctx.res.writableFinished) controller.abort(new Error('client closed'));
    });
    this.status = statusCode;
    this.contentType = typeof headers['content-type'] === 'string' ? headers['content-type'] : undefined;
    this.ctx.upstreamStatus = statusCode;
    this.ctx.upstreamMs = performance.now() - this.sentAt;
    const relayed = downstreamResponseHeaders(headers);
    if (statusCode >= 500 && !this.relayErrorBodies) {
      // A backup's error page can carry a stack trace or a database URL: only its status (and a
      // Retry-After, which the signer's retry schedule reads) reaches the client.
      this.replaced = true;
      this.held = undefined;
      this.headers = relayed['retry-after'] !== undefined ? { 'retry-after': relayed['retry-after'] } : {};
      return;
    }
    this.headers = relayed;
    const declared = headers['content-length'];
    if (typeof declared === 'string') this.expectedBytes = Number(declared);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const { res } = this.ctx;
    this.ctx.upstreamBodyBytes += chunk.length;
    if (this.record && this.recorded) {
      this.recordedBytes += chunk.length;
      if (this.recordedBytes <= this.record.maxAnswerBytes) this.recorded.push(chunk);
      else this.recorded = undefined;
    }
    if (this.replaced) return;
    this.ctx.responseBytes += chunk.length;
    if (this.held) {
      this.held.push(chunk);
      this.heldBytes += chunk.length;
      if (this.heldBytes <= COALESCE_BYTES) return;
      // Large: start streaming what is held, then every further chunk as it comes.
      this.writeHead();
      const held = this.held;
      this.held = undefined;
      for (const c of held) res.write(c);
      if (res.writableNeedDrain) this.pauseUntilDrained(controller);
      return;
    }
    if (!res.write(chunk)) this.pauseUntilDrained(controller);
  }

  onResponseEnd(): void {
    const { res } = this.ctx;
    const answer: DeliveryOutcome = {
      kind: 'answer', status: this.status, contentType: this.contentType,
      body: this.recorded && !this.replaced ? Buffer.concat(this.recorded) : undefined,
    };
    if (this.replaced) {
      const body = errorBody(this.status, this.ctx.id);
      this.ctx.responseBytes = Buffer.byteLength(body);
      this.writeHead({ 'content-type': 'application/json', 'content-length': String(this.ctx.responseBytes) });
      res.end(body);
    } else if (this.held) {
      this.writeHead();
      res.end(this.held.length === 1 ? this.held[0] : Buffer.concat(this.held));
    } else {
      res.end();
    }
    this.finish(answer, this.resolve);
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error & { code?: string }): void {
    const code = err.code ?? err.message;
    const timedOut = TIMEOUT_CODES.has(code);
    // Refused before a connection existed: the backup never saw the batch.
    const outcome: DeliveryOutcome = !this.started && NOT_SENT_CODES.has(code) ? { kind: 'not-sent' } : { kind: 'unknown' };
    if (!this.started || this.replaced) {
      // Nothing has reached the client yet: the pipeline answers 502/504.
      const reason = timedOut ? 'UPSTREAM_TIMEOUT' : this.started ? 'UPSTREAM_ABORTED' : 'UPSTREAM_UNAVAILABLE';
      const detail = timedOut ? `no answer within ${this.timeout} ms (${code})` : code;
      const rejection = this.record ? this.record.rejection(reason, detail) : new Rejection(reason, detail);
      this.finish(outcome, () => this.reject(rejection));
      return;
    }
    this.ctx.interruptedBy ??= timedOut ? 'UPSTREAM_TIMEOUT' : 'UPSTREAM_ABORTED';
    this.ctx.res.destroy();
    this.finish(outcome, this.resolve);
  }

  private writeHead(extra: Record<string, string> = {}): void {
    setSecurityHeaders(this.ctx.res, this.ctx.id);
    this.ctx.res.writeHead(this.status, { ...this.headers, ...this.record?.headers, ...extra });
  }

  /**
   * Waits for the client to take what is buffered before reading more. Not after the last byte
   * of a declared length: the client has its whole answer and may close before 'drain', and the
   * relay must still see the upstream's end (the request was forwarded, not broken off).
   */
  private pauseUntilDrained(controller: Dispatcher.DispatchController): void {
    if (this.ctx.responseBytes === this.expectedBytes) return;
    controller.pause();
    this.ctx.res.once('drain', () => controller.resume());
  }
}
