// Reference peer: the minimal mTLS reverse proxy built on http-proxy (client certificate required,
// declared body limit, keep-alive to the upstream). No identity check beyond chain verification.
// Usage: node http-proxy-min.mjs <config.json>   (cfg.httpProxyDir: where http-proxy was installed)
import https from 'node:https';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const require = createRequire(path.join(cfg.httpProxyDir, 'node_modules', 'x.js'));
const httpProxy = require('http-proxy');

const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });
const proxy = httpProxy.createProxyServer({ target: cfg.upstream, agent, xfwd: false });
proxy.on('error', (_err, _req, res) => {
  if (!res.headersSent) res.writeHead(502, { 'content-length': 0 });
  res.end();
});

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
  proxy.web(req, res);
});
server.headersTimeout = 30_000;
server.requestTimeout = 30_000;
server.listen(cfg.port, '127.0.0.1');
