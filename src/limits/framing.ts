/**
 * Request framing that Node's HTTP parser (llhttp, strict mode) lets through but that a guard
 * in front of another HTTP implementation must refuse (RFC 9112). llhttp itself already refuses
 * duplicate or conflicting Content-Length, Transfer-Encoding together with a valid
 * Content-Length, obsolete line folding, bare LF line ends, and codings it cannot end with
 * `chunked`; tests pin that. What it accepts, and this stage refuses (400, connection closed,
 * since the rest of the byte stream cannot be trusted):
 *  - any Transfer-Encoding other than exactly one `chunked` (e.g. `gzip, chunked`: the body
 *    would reach the upstream still gzip-coded, which the upstream never agreed to; `,chunked`);
 *  - an empty Transfer-Encoding beside a Content-Length (two framings in one message);
 *  - Transfer-Encoding on an HTTP/1.0 request (RFC 9112 section 6.1: "MUST treat the message as
 *    if the framing is faulty");
 *  - more than one Host field, or none in an HTTP/1.1 request (RFC 9112 section 3.2: "MUST
 *    respond with a 400"; the server's own Host check is off so that this refusal gets the
 *    generic body, the security headers and its audit event).
 * And more header fields than `limits.max_headers`: the runtimes silently drop the fields past
 * their count (Node from `req.headers`, Deno from `rawHeaders` too), so the listener keeps one
 * more than the limit (service/listen.ts) and a request that has it is refused here.
 */
import type { Config } from '../config/schema.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { Rejection } from '../pipeline/reasons.ts';
import type { Stage } from '../pipeline/stage.ts';

export function createFramingStage(config: Pick<Config, 'limits'>): Stage {
  const maxHeaders = config.limits.max_headers;
  return {
    name: 'framing',
    run(ctx: RequestContext) {
      const raw = ctx.req.rawHeaders;
      if (raw.length / 2 > maxHeaders) {
        throw new Rejection('HTTP_HEADERS_TOO_LARGE', `${raw.length / 2} header fields, limit ${maxHeaders}`, { closeConnection: true });
      }
      let transferEncoding: string[] | undefined;
      let contentLength = false;
      let hosts = 0;
      for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i]!.toLowerCase();
        if (name === 'transfer-encoding') {
          transferEncoding ??= [];
          transferEncoding.push(raw[i + 1]!);
        }
        else if (name === 'content-length') contentLength = true;
        else if (name === 'host') hosts += 1;
      }
      const refuse = (detail: string) => {
        throw new Rejection('HTTP_FRAMING_INVALID', detail, { closeConnection: true });
      };
      if (hosts > 1) refuse(`${hosts} Host fields`);
      if (hosts === 0 && ctx.req.httpVersion === '1.1') refuse('no Host field in an HTTP/1.1 request');
      if (transferEncoding === undefined) return;
      if (ctx.req.httpVersion === '1.0') refuse('Transfer-Encoding on an HTTP/1.0 request');
      if (contentLength) refuse('Transfer-Encoding and Content-Length together');
      if (transferEncoding.length !== 1 || transferEncoding[0]!.trim().toLowerCase() !== 'chunked') {
        refuse(`unsupported Transfer-Encoding ${JSON.stringify(transferEncoding.join(', ').slice(0, 64))}`);
      }
    },
  };
}
