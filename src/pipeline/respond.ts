/**
 * The one response boundary for refusals: a fixed JSON body per status with the request id,
 * never a path, key name, stack or library message.
 */
import type { ServerResponse } from 'node:http';
import type { Rejection } from './reasons.ts';

const ERROR_NAMES: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  408: 'request_timeout',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  417: 'expectation_failed',
  429: 'too_many_requests',
  500: 'internal_error',
  502: 'bad_gateway',
  503: 'service_unavailable',
  504: 'gateway_timeout',
};

/** Headers every response of the guard carries, forwarded or not. */
export function setSecurityHeaders(res: ServerResponse, requestId: string): void {
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('cache-control', 'no-store');
  res.setHeader('x-replguard-request-id', requestId);
}

export function errorBody(status: number, requestId: string): string {
  return JSON.stringify({ error: ERROR_NAMES[status] ?? 'error', request_id: requestId });
}

/** Sends the refusal, unless a response has already started (then the connection is cut). */
export function sendRejection(res: ServerResponse, requestId: string, rejection: Rejection, closeConnection: boolean): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = errorBody(rejection.status, requestId);
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  setSecurityHeaders(res, requestId);
  res.setHeader('content-type', 'application/json');
  res.setHeader('content-length', Buffer.byteLength(body));
  if (rejection.retryAfter !== undefined) res.setHeader('retry-after', String(Math.max(1, Math.ceil(rejection.retryAfter))));
  if (rejection.allow) res.setHeader('allow', rejection.allow.join(', '));
  for (const [name, value] of Object.entries(rejection.headers ?? {})) res.setHeader(name, value);
  if (closeConnection || rejection.closeConnection) res.setHeader('connection', 'close');
  res.writeHead(rejection.status);
  res.end(body);
}
