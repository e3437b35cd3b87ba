// Floor: a Node https server with client certificates required that answers every request itself
// (no forwarding). Usage: node node-floor.mjs <config.json>
import https from 'node:https';
import { readFileSync } from 'node:fs';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const OK = Buffer.from('{"ok":true}\n');

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
  let n = 0;
  req.on('data', (chunk) => { n += chunk.length; });
  req.on('end', () => {
    if (n > cfg.maxBodyBytes) res.writeHead(413, { 'content-length': 0, connection: 'close' }).end();
    else res.writeHead(200, { 'content-type': 'application/json', 'content-length': OK.length }).end(OK);
  });
});
server.headersTimeout = 30_000;
server.requestTimeout = 30_000;
server.listen(cfg.port, '127.0.0.1');
