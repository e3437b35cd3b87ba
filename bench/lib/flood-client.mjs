#!/usr/bin/env node
// The flood scenario's load generator: several kinds of unwanted clients, each from its own
// loopback source address (localAddress), each opening a fresh TLS connection per attempt
// (a full handshake, never resumed) at a bounded rate with a bounded number in flight, and
// sending one 1 KiB POST when the handshake lets it. Loopback only.
//   node flood-client.mjs <config.json>
// config: { port, ca, body, servername, kinds: [{ name, localAddress, rate, concurrency,
//           cert?, key?, authorization?, forgeJwt? }] }
// forgeJwt: a real token whose signature is replaced by 64 random bytes per attempt, so that
// every attempt costs the guard a signature verification (no cache can answer it).
// Control on stdin, one word a line: `mark` prints a snapshot of the counters as one JSON line
// ({"snapshot": {...}}), `stop` prints the last one and exits. It prints {"ready": true} first.
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { classifyFloodError } from './flood-stats.mjs';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const ca = readFileSync(cfg.ca);
const body = readFileSync(cfg.body);
const ATTEMPT_TIMEOUT_MS = 5000;
const TICK_MS = 5;

function makeKind(k) {
  const counts = { attempts: 0, skipped: 0, handshakes: 0, outcomes: {} };
  const cert = k.cert ? readFileSync(k.cert) : undefined;
  const key = k.key ? readFileSync(k.key) : undefined;
  const forged = k.forgeJwt ? k.forgeJwt.split('.').slice(0, 2).join('.') : null;
  let inFlight = 0;
  const startedAt = process.hrtime.bigint();

  const count = (outcome) => { counts.outcomes[outcome] = (counts.outcomes[outcome] ?? 0) + 1; };

  function authorization() {
    if (forged) return `Bearer ${forged}.${randomBytes(64).toString('base64url')}`;
    return k.authorization;
  }

  function attempt() {
    counts.attempts++;
    inFlight++;
    let done = false;
    let secured = false;
    let head = '';
    const finish = (outcome) => {
      if (done) return;
      done = true;
      inFlight--;
      count(outcome);
      clearTimeout(timer);
      socket.destroy();
    };
    const socket = tls.connect({
      host: '127.0.0.1', port: cfg.port, localAddress: k.localAddress, servername: cfg.servername,
      // an attacker need not verify who answers: no server-certificate check saves the
      // generator a signature verification per attempt (more flood per core of this box)
      ca, cert, key, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', rejectUnauthorized: false,
    });
    const timer = setTimeout(() => finish(secured ? 'timeout-after-handshake' : 'timeout-in-handshake'), ATTEMPT_TIMEOUT_MS);
    socket.on('secureConnect', () => {
      secured = true;
      counts.handshakes++;
      const auth = authorization();
      socket.write(`POST /api/replication/apply HTTP/1.1\r\nhost: ${cfg.servername}:${cfg.port}\r\n` +
        `content-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n` +
        `${auth ? `authorization: ${auth}\r\n` : ''}\r\n`);
      socket.write(body);
    });
    socket.on('data', (chunk) => {
      head += chunk.toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      if (m) finish(`http-${m[1]}`);
      else if (head.length > 64) finish('garbage');
    });
    socket.on('error', (err) => finish(classifyFloodError(err, secured)));
    socket.on('close', () => finish(secured ? 'closed-after-handshake' : 'closed-in-handshake'));
  }

  function tick() {
    const elapsedS = Number(process.hrtime.bigint() - startedAt) / 1e9;
    const due = Math.floor(elapsedS * k.rate) - counts.attempts - counts.skipped;
    for (let i = 0; i < due; i++) {
      if (inFlight < k.concurrency) attempt();
      else counts.skipped++; // offered but not sent: the cap on connections in flight
    }
  }

  return { name: k.name, localAddress: k.localAddress, rate: k.rate, counts, tick };
}

const kinds = cfg.kinds.map(makeKind);
const snapshot = () => ({
  atMs: Number(process.hrtime.bigint() / 1_000_000n),
  kinds: Object.fromEntries(kinds.map((k) => [k.name, structuredClone(k.counts)])),
});
const interval = setInterval(() => { for (const k of kinds) k.tick(); }, TICK_MS);
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);

createInterface({ input: process.stdin }).on('line', (line) => {
  const word = line.trim();
  if (word === 'mark' || word === 'stop') process.stdout.write(`${JSON.stringify({ snapshot: snapshot() })}\n`);
  if (word === 'stop') {
    clearInterval(interval);
    process.exit(0);
  }
});
process.stdin.on('end', () => process.exit(0));
