// Floor: a Node https server with client certificates required that answers every request itself
// (no forwarding). Usage: node node-floor.mjs <config.json>
import { readConfig, serve } from './tls-server.mjs';

const cfg = readConfig();
const OK = Buffer.from('{"ok":true}\n');

serve(cfg, (req, res) => {
  let n = 0;
  req.on('data', (chunk) => { n += chunk.length; });
  req.on('end', () => {
    if (n > cfg.maxBodyBytes) res.writeHead(413, { 'content-length': 0, connection: 'close' }).end();
    else res.writeHead(200, { 'content-type': 'application/json', 'content-length': OK.length }).end(OK);
  });
});
