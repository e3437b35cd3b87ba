// The flood scenario (issue 22, part 4): one legitimate POP (wrk, client certificate
// calgary-01, from 127.0.0.1) at the fixed-1k load while lib/flood-client.mjs floods the target
// from other loopback addresses with
//   (a) no-cert: TLS handshakes without a client certificate (127.0.0.3);
//   (b) bad-credentials: handshakes with a valid certificate (CN toronto-02, the bench CA) and a
//       forged JWT (a real token's header and claims, 64 random bytes as its signature) (127.0.0.4);
//   (c) banned-address: a banned address reconnecting, with a valid certificate that names no
//       peer (CN intruder-99) (127.0.0.2).
// What refuses each kind depends on the target: see FLOOD_MEANING. The counting is in
// flood-stats.mjs (no imports, unit tested in test/bench/flood-stats.test.ts).
import net from 'node:net';
import http from 'node:http';
import path from 'node:path';
import { writeFileSync, mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { startProcess, stopProcess } from './proc.mjs';

export { classifyFloodError, floodWindow, legitSuccess, describeKind } from './flood-stats.mjs';

/**
 * The flood scenario's banned source address (c): refused by a rule of nginx, haproxy and
 * caddy, banned in replguard by failures sent from it before the flood (banAddressByFailures).
 * The legitimate client (wrk) connects from 127.0.0.1.
 */
export const FLOOD_BANNED_ADDRESS = '127.0.0.2';

export const FLOOD_KINDS = [
  { name: 'no-cert', localAddress: '127.0.0.3' },
  { name: 'bad-credentials', localAddress: '127.0.0.4' },
  { name: 'banned-address', localAddress: FLOOD_BANNED_ADDRESS },
];

/** What each flood kind meets at each target, for the report. */
export const FLOOD_MEANING = {
  'no-cert': 'all: the handshake requires a client certificate (refused in or right after the handshake)',
  'bad-credentials': 'nginx/haproxy/caddy check only the certificate: a rule on its subject (CN must be calgary-01) answers 403; replguard (mTLS only): toronto-02 names no peer (AUTH_PEER_UNKNOWN, 403); replguard-full: toronto-02 is a peer, so the forged JWT is verified and refused (AUTH_JWT_SIGNATURE_INVALID, 401)',
  'banned-address': 'nginx: `deny 127.0.0.2` (403 after the handshake); haproxy: `tcp-request connection reject` (cut at accept); caddy: `remote_ip` matcher (403 after the handshake); replguard: the address banned by failures sent from it before the run (limits.ban_after_failures), cut at accept except one probe handshake a second',
};

/** GET a loopback admin path; resolves { status, text } or { error }. */
function adminGet(port, urlPath) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false, timeout: 3000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.on('error', (err) => resolve({ error: err.code ?? err.message }));
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

/** One plain-TCP connection from `localAddress` sending bytes that are not TLS; resolves when closed. */
function malformedConnection(port, localAddress) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress });
    const timer = setTimeout(() => s.destroy(), 3000);
    s.on('connect', () => s.write('GET / HTTP/1.0\r\n\r\n'));
    s.on('data', () => {});
    s.on('error', () => {});
    s.on('close', () => { clearTimeout(timer); resolve(); });
  });
}

/**
 * replguard has no deny list: an address is banned by its failures. Sends `failures` connections
 * of non-TLS bytes (TLS_HANDSHAKE_MALFORMED, which counts toward a ban of the address) from the
 * banned address, 8 at a time (under limits.max_unauthenticated_per_address), then waits until
 * the admin listener's GET /bans lists it (key `addr:<address>`). Does nothing when it is banned already.
 */
export async function banAddressByFailures({ port, adminPort, address = FLOOD_BANNED_ADDRESS, failures }) {
  const banned = async () => {
    const r = await adminGet(adminPort, '/bans');
    return r.status === 200 && r.text.includes(`:${address}"`) ? true : r.status === 200 ? false : `GET /bans: ${r.status ?? r.error}`;
  };
  const first = await banned();
  if (first === true) return;
  if (first !== false) throw new Error(first);
  let sent = 0;
  const worker = async () => { while (sent < failures) { sent++; await malformedConnection(port, address); } };
  await Promise.all(Array.from({ length: 8 }, worker));
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    if ((await banned()) === true) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${address} was not listed by GET /bans after ${failures} failures`);
}

/**
 * Starts flood-client.mjs against a started target and waits for it to be ready.
 * Returns { child, mark(), stop() }: mark() and stop() resolve the generator's snapshot.
 */
export async function startFlood(ctx, started, { rate, concurrency, forgeJwt }) {
  const dir = path.join(ctx.runDir, 'flood');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `flood-${started.port}-${process.hrtime.bigint()}.json`);
  const { pki } = ctx;
  const kinds = FLOOD_KINDS.map((k) => ({
    ...k, rate, concurrency,
    ...(k.name === 'bad-credentials' ? { cert: pki.floodPeerCert, key: pki.floodPeerKey, forgeJwt } : {}),
    ...(k.name === 'banned-address' ? { cert: pki.intruderCert, key: pki.intruderKey } : {}),
  }));
  writeFileSync(file, JSON.stringify({ port: started.port, ca: pki.caCert, body: ctx.bodies['1k'], servername: 'localhost', kinds }, null, 2));
  const child = startProcess(process.execPath, [path.join(ctx.benchDir, 'lib', 'flood-client.mjs'), file],
    { pipes: true, stderrFile: path.join(dir, 'flood-client.stderr.log') });
  const waiting = [];
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => {
    let msg;
    try { msg = JSON.parse(line); } catch { return; }
    waiting.shift()?.resolve(msg);
  });
  child.on('exit', (code) => { for (const w of waiting.splice(0)) w.reject(new Error(`flood client exited (${code}); see ${dir}/flood-client.stderr.log`)); });
  const next = (timeoutMs = 10000) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('flood client did not answer')), timeoutMs);
    waiting.push({ resolve: (m) => { clearTimeout(timer); resolve(m); }, reject: (e) => { clearTimeout(timer); reject(e); } });
  });
  const ready = next();
  await ready;
  const ask = async (word) => {
    const answer = next();
    child.stdin.write(`${word}\n`);
    return (await answer).snapshot;
  };
  return {
    child,
    mark: () => ask('mark'),
    async stop() {
      try { return await ask('stop'); } finally { await stopProcess(child, 1000); }
    },
  };
}

/** A JWT-shaped token for targets that have no key of their own (it is refused before or without any check). */
export function genericForgedJwt() {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'ES256', typ: 'JWT' })}.${b64({ sub: 'toronto-02', aud: 'zurich-01', iss: 'replguard' })}.x`;
}
