/** The admin listener (loopback by default): liveness and readiness for probes, Prometheus metrics. */
import { createServer, type Server } from 'node:http';
import type { OperationalLog } from '../log/operational.ts';
import { listenOrExplain } from './listen.ts';

export interface AdminState {
  /** Listening and not draining. */
  ready(): boolean;
  /** The Prometheus text exposition for `GET /metrics`. */
  metrics(): Promise<{ contentType: string; body: string }>;
}

export async function startAdminServer(host: string, port: number, state: AdminState, log: OperationalLog): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    const send = (status: number, contentType: string, text: string) => {
      res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
      res.end(req.method === 'HEAD' ? undefined : text);
    };
    const reply = (status: number, body: object) => send(status, 'application/json', JSON.stringify(body));
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, { error: 'method_not_allowed' });
    if (path === '/healthz') return reply(200, { status: 'ok' });
    if (path === '/readyz') return state.ready() ? reply(200, { status: 'ready' }) : reply(503, { status: 'not_ready' });
    if (path === '/metrics') {
      state.metrics().then(
        ({ contentType, body }) => send(200, contentType, body),
        (err: unknown) => {
          log.error({ err }, 'collecting metrics failed');
          reply(500, { error: 'internal_error' });
        },
      );
      return;
    }
    return reply(404, { error: 'not_found' });
  });
  await listenOrExplain(server, host, port, 'admin');
  return server;
}
