/** Binding a listener, with an operator-facing error naming the config key when it fails. */
import { once } from 'node:events';
import type { Server as HttpServer, ServerOptions } from 'node:http';
import type { Server } from 'node:net';
import { ConfigError } from '../config/errors.ts';

export async function listenOrExplain(server: Server, host: string, port: number, keyPath: string): Promise<void> {
  server.listen(port, host);
  try {
    await once(server, 'listening');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const hint = code === 'EADDRINUSE' ? 'another process uses it; stop it or pick another port'
      : code === 'EACCES' ? 'ports below 1024 need privileges; pick a port above 1024'
      : code === 'EADDRNOTAVAIL' ? 'this host has no such address'
      : String((err as Error).message);
    throw new ConfigError([{ path: keyPath, message: `cannot listen on ${host}:${port}: ${code ?? 'error'}; ${hint}` }]);
  }
}

/** The limits an HTTP listener enforces (the guard's and the signer's alike). */
export interface ListenerLimits {
  readonly max_header_bytes: number;
  readonly max_headers: number;
  readonly header_timeout: number;
  readonly request_timeout: number;
  readonly keep_alive_timeout: number;
  readonly max_connections: number;
}

/** `createServer` options for the limits (those that can only be set at construction too). */
export function listenerOptions(limits: ListenerLimits): ServerOptions {
  return {
    maxHeaderSize: limits.max_header_bytes,
    headersTimeout: limits.header_timeout,
    requestTimeout: limits.request_timeout,
    keepAliveTimeout: limits.keep_alive_timeout,
    // Timeouts are checked this often; Node's default (30 s) would let a slowloris client far past header_timeout.
    connectionsCheckingInterval: 1000,
    noDelay: true,
  };
}

/** Sets the limits on a running server (start-up, and a config reload: they apply to new connections). */
export function applyListenerLimits(server: HttpServer, limits: ListenerLimits): void {
  // maxHeaderSize is read when a connection's parser is set up (not in @types/node's Server).
  (server as HttpServer & { maxHeaderSize: number }).maxHeaderSize = limits.max_header_bytes;
  // One more than the limit: a request that reaches it has too many (limits/framing.ts refuses
  // it), on runtimes that keep every field and on those that cut the list at this count alike.
  server.maxHeadersCount = limits.max_headers + 1;
  server.maxConnections = limits.max_connections;
  server.headersTimeout = limits.header_timeout;
  server.requestTimeout = limits.request_timeout;
  server.keepAliveTimeout = limits.keep_alive_timeout;
}
