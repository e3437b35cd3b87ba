/**
 * An in-process upstream whose failure mode is chosen by the request path, so one guard can
 * reach every upstream outcome: `/hang` never answers, `/refuse` drops the connection before
 * answering, `/abort` starts a response and breaks it off; any other path gets 200.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';

export async function startScriptedUpstream(): Promise<{ url: string; hits(path: string): number; stop(): Promise<void> }> {
  const hits = new Map<string, number>();
  // Large heads are accepted: header limits are the guard's job, not this upstream's.
  const server: Server = createServer({ maxHeaderSize: 1024 * 1024 }, (req, res) => {
    const path = req.url ?? '';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    req.resume();
    req.on('end', () => {
      if (path === '/hang') return;
      if (path === '/refuse') {
        req.socket.destroy();
        return;
      }
      if (path === '/abort') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
        res.write('{"partial":');
        setTimeout(() => req.socket.destroy(), 20);
        return;
      }
      const body = JSON.stringify({ applied: true });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    hits: (path) => hits.get(path) ?? 0,
    stop: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
