// Floor for a Node forwarding proxy: the same TLS server as node-floor (client certificate
// required), the body buffered, then forwarded with undici's Pool.dispatch as replguard does,
// and no check at all beyond chain verification and the declared body limit. What replguard
// costs above this figure is its own pipeline (authentication, limits, body contract, audit).
// Usage: node undici-min.mjs <config.json>
import { Pool } from 'undici';
import { readConfig, serve } from './tls-server.mjs';

const cfg = readConfig();
const pool = new Pool(cfg.upstream, { connections: 256, pipelining: 1 });

serve(cfg, (req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    let status = 502;
    let headers = {};
    const out = [];
    pool.dispatch({ path: req.url, method: 'POST', headers: ['content-type', 'application/json', 'content-length', String(body.length)], body }, {
      onRequestStart() {},
      onResponseStart(_c, statusCode, h) { status = statusCode; headers = { 'content-type': h['content-type'] ?? 'application/json' }; },
      onResponseData(_c, chunk) { out.push(chunk); },
      onResponseEnd() { res.writeHead(status, headers); res.end(Buffer.concat(out)); },
      onResponseError() { if (!res.headersSent) res.writeHead(502, { 'content-length': 0 }); res.end(); },
    });
  });
});
