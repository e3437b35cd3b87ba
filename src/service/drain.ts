/**
 * Listener plumbing both roles need: draining a server on shutdown, and the raw refusal written
 * to a socket whose request Node's HTTP parser rejected (there is no response object then).
 */
import { STATUS_CODES, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { OperationalLog } from '../log/operational.ts';
import { errorBody } from '../pipeline/respond.ts';

/**
 * Stops accepting, closes idle keep-alive connections, waits for the busy ones up to
 * `timeoutMs`, then closes whatever is left.
 */
export async function drainServer(server: Server, timeoutMs: number, log: OperationalLog): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections?.();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'deadline'>((resolve) => {
    timer = setTimeout(() => resolve('deadline'), timeoutMs);
  });
  const result = await Promise.race([closed.then(() => 'closed' as const), deadline]);
  clearTimeout(timer);
  if (result === 'deadline') {
    log.warn('drain deadline reached: closing the remaining connections');
    server.closeAllConnections?.();
  }
}

/**
 * Writes the fixed refusal (the generic body, the security headers, `connection: close`) straight
 * to the socket and closes it once the bytes are out. Returns the body's size. The socket is not
 * destroyed at once: on Deno a destroy right after the write drops the answer.
 */
export function writeRawRefusal(socket: Socket, status: number, requestId: string): number {
  const body = errorBody(status, requestId);
  if (socket.writable) {
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\nx-content-type-options: nosniff\r\n` +
      `cache-control: no-store\r\nx-replguard-request-id: ${requestId}\r\n\r\n${body}`,
      () => socket.destroy(),
    );
    // A client that does not read must not hold the socket open.
    setTimeout(() => socket.destroy(), 2000).unref();
  } else {
    socket.destroy();
  }
  return Buffer.byteLength(body);
}

/** The client address without the IPv4-mapped IPv6 prefix. */
export function plainAddress(address: string | undefined): string {
  if (!address) return 'unknown';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
