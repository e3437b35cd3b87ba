/**
 * The body limit: a declared Content-Length over `limits.max_body_bytes` is refused before a
 * byte is read; a streamed (chunked) body is counted as it arrives and refused when it crosses
 * the limit. The whole body is held before anything is forwarded, so the upstream never sees
 * part of a refused request. Memory per request is bounded by the limit.
 */
import type { Config } from '../config/schema.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { Rejection } from '../pipeline/reasons.ts';
import type { Stage } from '../pipeline/stage.ts';

const EMPTY = Buffer.alloc(0);

export function createBodyStage(config: { readonly limits: Pick<Config['limits'], 'max_body_bytes'> }): Stage {
  const max = config.limits.max_body_bytes;
  return {
    name: 'body',
    provides: ['body'],
    run(ctx: RequestContext) {
      const { req } = ctx;
      const declared = req.headers['content-length'];
      if (declared !== undefined && Number(declared) > max) {
        throw new Rejection('BODY_TOO_LARGE', `declared ${declared} bytes, limit ${max}`, { closeConnection: true });
      }
      if (req.complete && req.readableLength === 0 && declared === undefined) {
        ctx.body = EMPTY;
        return;
      }
      return readBody(ctx, max);
    },
  };
}

function readBody(ctx: RequestContext, max: number): Promise<void> {
  const { req } = ctx;
  return new Promise<void>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('aborted', onAborted);
      req.off('close', onClose);
      req.socket.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        cleanup();
        req.pause();
        reject(new Rejection('BODY_TOO_LARGE', `streamed body passed ${max} bytes`, { closeConnection: true }));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      ctx.body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      resolve();
    };
    const onAborted = () => {
      cleanup();
      reject(new Rejection('BODY_INCOMPLETE', `connection closed after ${size} body bytes`));
    };
    const onClose = () => {
      if (!req.complete) onAborted();
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('aborted', onAborted);
    req.on('close', onClose);
    // After an HTTP parse error mid-body, Node no longer ends or aborts the request itself.
    req.socket.on('close', onClose);
  });
}
