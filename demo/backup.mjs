#!/usr/bin/env node
// A stand-in for the legacy backup service, for the demo and the end-to-end tests: plain HTTP,
// it "applies" whatever reaches it, like the real one. It records each request (method, path,
// headers, body) as one NDJSON line in --record FILE, so a test can see exactly what arrived.
//
//   node demo/backup.mjs [--host 127.0.0.1] [--port 8080] [--record FILE] [--delay-ms N]
//
// Prints {"listening":{"host":..,"port":..}} on stdout once it accepts connections.
import { appendFileSync } from 'node:fs';
import { createServer } from 'node:http';
import process from 'node:process';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '8080' },
    record: { type: 'string' },
    'delay-ms': { type: 'string', default: '0' },
  },
});
const delayMs = Number(values['delay-ms']);
let applied = 0;

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const answer = () => {
      if (req.method !== 'POST' || req.url !== '/api/replication/apply') {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"error":"not found"}');
        return;
      }
      let entries = 0;
      try {
        const parsed = JSON.parse(body.toString('utf8'));
        entries = Array.isArray(parsed.entries) ? parsed.entries.length : 0;
      } catch {
        // The legacy backup is lenient: it applies what it can.
      }
      applied += 1;
      if (values.record) {
        appendFileSync(values.record, `${JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: body.toString('base64') })}\n`);
      }
      const text = JSON.stringify({ applied: entries, batch: applied });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (delayMs > 0) setTimeout(answer, delayMs);
    else answer();
  });
});
server.keepAliveTimeout = 120_000;
server.listen(Number(values.port), values.host, () => {
  const { port } = server.address();
  process.stdout.write(`${JSON.stringify({ listening: { host: values.host, port } })}\n`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
