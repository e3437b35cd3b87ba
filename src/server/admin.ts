/** The admin listener (loopback by default): liveness and readiness for probes. */
import { createServer, type Server } from 'node:http';
import { listenOrExplain } from './listen.ts';

export interface AdminState {
  /** Listening and not draining. */
  ready(): boolean;
}

export async function startAdminServer(host: string, port: number, state: AdminState): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    const reply = (status: number, body: object) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
      res.end(req.method === 'HEAD' ? undefined : text);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, { error: 'method_not_allowed' });
    if (path === '/healthz') return reply(200, { status: 'ok' });
    if (path === '/readyz') return state.ready() ? reply(200, { status: 'ready' }) : reply(503, { status: 'not_ready' });
    return reply(404, { error: 'not_found' });
  });
  await listenOrExplain(server, host, port, 'admin');
  return server;
}
