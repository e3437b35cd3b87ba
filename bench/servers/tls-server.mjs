// The TLS front the Node peers share (node-floor, undici-min, http-proxy-min), so that they
// differ only in what they do with a request: a Node https server with a client certificate
// required, TLS 1.3, long keep-alive, 404 off the route, 413 over the declared body limit.
// Usage: serve(cfg, (req, res) => ...) with cfg from the harness's config.json.
import https from 'node:https';
import { readFileSync } from 'node:fs';

export function readConfig() {
  return JSON.parse(readFileSync(process.argv[2], 'utf8'));
}

export function serve(cfg, handle) {
  const server = https.createServer({
    key: readFileSync(cfg.key), cert: readFileSync(cfg.cert), ca: readFileSync(cfg.ca),
    requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3',
    keepAliveTimeout: 300_000,
  }, (req, res) => {
    if (req.method !== 'POST' || req.url !== cfg.path) {
      res.writeHead(404, { 'content-length': 0 }).end();
      return;
    }
    if (Number(req.headers['content-length'] ?? 0) > cfg.maxBodyBytes) {
      res.writeHead(413, { 'content-length': 0, connection: 'close' }).end();
      return;
    }
    handle(req, res);
  });
  server.headersTimeout = 30_000;
  server.requestTimeout = 30_000;
  server.listen(cfg.port, '127.0.0.1');
  return server;
}
