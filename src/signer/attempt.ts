/**
 * One attempt to deliver a request to the backup's guard, bounded by backup.timeout from the
 * connection to the last byte of the answer. The outcome says whether to relay, retry or give up;
 * a retryable answer's body is discarded, a final answer is handed back unread so the caller can
 * stream it to the primary.
 */
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { request, type Agent } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { Reason } from '../pipeline/reasons.ts';
import { guardDeduplicates, RETRYABLE_STATUSES } from './retry.ts';
import { classifyTlsError, serverCertificateInfo, type BackupTarget, type ServerCertificateInfo } from './tls-client.ts';

export type AttemptOutcome =
  /** A final answer from the guard (2xx or a refusal); `res` is unread. */
  | { readonly kind: 'answer'; readonly res: IncomingMessage; readonly tls: AttemptTls; readonly done: Promise<AttemptEnd> }
  /** An answer that says "later" (429, 502, 503, 504); its body was discarded. */
  | { readonly kind: 'retryable'; readonly status: number; readonly retryAfter: string | undefined; readonly backupRequestId: string | undefined; readonly dedup: boolean; readonly tls: AttemptTls }
  /**
   * No answer: connection failure, timeout or a refused certificate. `sent`: the connection was
   * up (TLS done, or the request written), so the guard may have the batch and forwarded it.
   */
  | { readonly kind: 'failed'; readonly reason: Reason; readonly detail: string; readonly retryable: boolean; readonly sent: boolean; readonly tls: AttemptTls };

export interface AttemptTls {
  readonly version: string | undefined;
  readonly server: ServerCertificateInfo | undefined;
}

/** How the relay of a final answer ended: complete, or cut (timeout or the guard broke off). */
export interface AttemptEnd {
  readonly complete: boolean;
  readonly detail?: string;
}

export interface AttemptRequest {
  readonly agent: Agent;
  readonly target: BackupTarget;
  readonly path: string;
  readonly headers: OutgoingHttpHeaders;
  readonly body: Buffer;
  readonly timeoutMs: number;
  /** Told of the socket the request is sent on (new or reused), e.g. to count open connections. */
  readonly onSocket?: (socket: Socket) => void;
}

export function sendAttempt(a: AttemptRequest): Promise<AttemptOutcome> {
  return new Promise((resolve) => {
    let socket: TLSSocket | undefined;
    let settled = false;
    let endRelay: ((end: AttemptEnd) => void) | undefined;
    // Conservative: once the TLS connection is up the request may be on its way.
    let sent = false;
    const markSent = () => {
      sent = true;
    };
    const tlsInfo = (): AttemptTls => ({
      version: socket?.getProtocol?.() ?? undefined,
      server: serverCertificateInfo(socket?.getPeerCertificate?.(false)),
    });
    const req = request({
      agent: a.agent,
      hostname: a.target.hostname,
      port: a.target.port,
      method: 'POST',
      path: a.path,
      headers: a.headers,
    });
    const timer = setTimeout(() => {
      const info = tlsInfo();
      req.destroy();
      if (!settled) {
        settled = true;
        resolve({ kind: 'failed', reason: 'SIGNER_BACKUP_TIMEOUT', detail: `no complete answer within ${a.timeoutMs} ms`, retryable: true, sent, tls: info });
      } else endRelay?.({ complete: false, detail: `the answer did not complete within ${a.timeoutMs} ms` });
    }, a.timeoutMs);
    req.on('socket', (s) => {
      socket = s as TLSSocket;
      a.onSocket?.(s);
      // A kept-alive connection is up already; a new one once its handshake is done.
      // (`authorized`, not getProtocol(): Node names a version before the handshake.)
      if (socket.authorized) markSent();
      else socket.once('secureConnect', markSent);
    });
    req.once('finish', markSent);
    req.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (settled) return;
      settled = true;
      const refused = classifyTlsError(err);
      const cert = (err as { cert?: unknown }).cert;
      const info = tlsInfo();
      const server = info.server ?? serverCertificateInfo(cert as Parameters<typeof serverCertificateInfo>[0]);
      resolve({
        kind: 'failed',
        reason: refused ?? 'SIGNER_BACKUP_UNREACHABLE',
        detail: err.code ? `${err.code}${refused ? `: ${err.message}` : ''}` : err.message,
        retryable: refused === undefined,
        sent: sent && refused === undefined,
        tls: { ...info, server },
      });
    });
    req.on('response', (res: IncomingMessage) => {
      settled = true;
      const status = res.statusCode ?? 0;
      const info = tlsInfo();
      if (RETRYABLE_STATUSES.has(status)) {
        clearTimeout(timer);
        res.resume();
        const retryAfter = res.headers['retry-after'];
        const id = res.headers['x-replguard-request-id'];
        resolve({ kind: 'retryable', status, retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined, backupRequestId: typeof id === 'string' ? id : undefined, dedup: guardDeduplicates(res.headers), tls: info });
        return;
      }
      const done = new Promise<AttemptEnd>((resolveEnd) => {
        endRelay = (end) => {
          clearTimeout(timer);
          endRelay = undefined;
          resolveEnd(end);
        };
      });
      res.on('end', () => endRelay?.({ complete: true }));
      res.on('error', () => undefined); // reported through 'close'
      res.on('close', () => endRelay?.(res.complete ? { complete: true } : { complete: false, detail: 'the guard broke off its answer' }));
      resolve({ kind: 'answer', res, tls: info, done });
    });
    req.end(a.body);
  });
}
