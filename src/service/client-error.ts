/**
 * What an error of the HTTP parser (Node's `clientError`) means, for both roles' listeners: one
 * mapping from the parser's code to a reason code, so the guard and the signer name the same
 * failure the same way.
 */
import type { Socket } from 'node:net';
import type { Reason } from '../pipeline/reasons.ts';

/**
 * The client went away (or its socket is already answered and closed): nothing to answer,
 * nothing to audit. A socket that is merely no longer writable (the client sent its FIN after
 * malformed bytes) is not gone: its refusal is still audited and counted.
 */
export function isClientGone(err: NodeJS.ErrnoException, socket: Socket): boolean {
  return socket.destroyed || err.code === 'ECONNRESET' || err.code === 'EPIPE';
}

/**
 * The reason for a parser error. `midRequest`: the head was complete and the request is being
 * served, so an end of stream is a client that left mid-body.
 */
export function clientErrorReason(code: string | undefined, midRequest: boolean): Extract<Reason, 'HTTP_HEADERS_TOO_LARGE' | 'HTTP_TIMEOUT' | 'HTTP_MALFORMED' | 'BODY_INCOMPLETE'> {
  if (code === 'HPE_HEADER_OVERFLOW') return 'HTTP_HEADERS_TOO_LARGE';
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return 'HTTP_TIMEOUT';
  if (midRequest && code === 'HPE_INVALID_EOF_STATE') return 'BODY_INCOMPLETE';
  return 'HTTP_MALFORMED';
}
