// Reference peer: the minimal mTLS reverse proxy built on http-proxy (client certificate required,
// declared body limit, keep-alive to the upstream). No identity check beyond chain verification.
// Usage: node http-proxy-min.mjs <config.json>   (cfg.httpProxyDir: where http-proxy was installed)
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { readConfig, serve } from './tls-server.mjs';

const cfg = readConfig();
const require = createRequire(path.join(cfg.httpProxyDir, 'node_modules', 'x.js'));
const httpProxy = require('http-proxy');

const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });
const proxy = httpProxy.createProxyServer({ target: cfg.upstream, agent, xfwd: false });
proxy.on('error', (_err, _req, res) => {
  if (!res.headersSent) res.writeHead(502, { 'content-length': 0 });
  res.end();
});

serve(cfg, (req, res) => proxy.web(req, res));
