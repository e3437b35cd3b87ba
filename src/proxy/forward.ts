/**
 * The last stage: sends the checked request to the upstream over a keep-alive pool and streams
 * the answer back. Upstream unreachable is 502, slower than `upstream.timeout` is 504, both
 * generic to the client and precise in the audit log.
 *
 * Forwarding uses `node:http` with a keep-alive Agent rather than `http-proxy`: the body is
 * already buffered by the body stage (nothing is left to stream), and the issue 10 reference
 * measured a minimal http-proxy mTLS proxy at 5-9x nginx's CPU per request.
 */
import { Agent, request, type IncomingMessage } from 'node:http';
import type { Config } from '../config/schema.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { Rejection } from '../pipeline/reasons.ts';
import { setSecurityHeaders } from '../pipeline/respond.ts';
import type { Stage } from '../pipeline/stage.ts';
import { downstreamResponseHeaders, upstreamRequestHeaders } from './headers.ts';

export interface ForwardStage extends Stage {
  /** Closes the idle upstream connections (shutdown). */
  close(): void;
}

export interface ForwardOptions {
  /** Lower-case request header names consumed by earlier stages (credentials); never forwarded. */
  readonly strippedHeaders?: ReadonlySet<string>;
}

export function createForwardStage(config: Pick<Config, 'upstream'>, options: ForwardOptions = {}): ForwardStage {
  const url = new URL(config.upstream.url);
  const hostname = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port || 80);
  const timeout = config.upstream.timeout;
  const stripped = options.strippedHeaders ?? new Set<string>();
  const agent = new Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64, scheduling: 'lifo', timeout });

  return {
    name: 'forward',
    close: () => agent.destroy(),
    run(ctx: RequestContext) {
      const body = ctx.body ?? Buffer.alloc(0);
      const headers = upstreamRequestHeaders(ctx.req.rawHeaders, url.host, body.length, {
        pop: ctx.pop!,
        requestId: ctx.id,
        certSha256: ctx.conn.peer?.sha256 ?? '',
        clientAddress: ctx.conn.remoteAddress,
      }, stripped);

      return new Promise<void>((resolve, reject) => {
        let settled = false;
        const fail = (rejection: Rejection) => {
          if (settled) return;
          settled = true;
          reject(rejection);
        };
        const upstream = request({ agent, hostname, port, method: ctx.req.method, path: ctx.path, headers, timeout });
        upstream.on('timeout', () => {
          upstream.destroy();
          if (!settled) fail(new Rejection('UPSTREAM_TIMEOUT', `no answer within ${timeout} ms`));
          else {
            ctx.interruptedBy = 'UPSTREAM_TIMEOUT';
            ctx.res.destroy();
          }
        });
        upstream.on('error', (err: NodeJS.ErrnoException) => {
          if (!settled) fail(new Rejection('UPSTREAM_UNAVAILABLE', err.code ?? err.message));
        });
        upstream.on('response', (upRes: IncomingMessage) => {
          settled = true;
          const { res } = ctx;
          const responseHeaders = downstreamResponseHeaders(upRes.rawHeaders);
          setSecurityHeaders(res, ctx.id);
          res.writeHead(upRes.statusCode ?? 502, responseHeaders);
          upRes.on('data', (chunk: Buffer) => {
            ctx.responseBytes += chunk.length;
            if (!res.write(chunk)) {
              upRes.pause();
              res.once('drain', () => upRes.resume());
            }
          });
          upRes.on('end', () => {
            res.end();
            resolve();
          });
          upRes.on('error', () => undefined); // reported through 'close' below
          upRes.on('close', () => {
            if (upRes.complete) return;
            ctx.interruptedBy ??= 'UPSTREAM_ABORTED';
            res.destroy();
            resolve();
          });
          res.on('close', () => {
            if (!upRes.complete) upstream.destroy();
          });
        });
        upstream.end(body);
      });
    },
  };
}
