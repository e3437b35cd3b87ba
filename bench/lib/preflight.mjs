// Preflight per target: 2xx with the peer certificate, refused without one (and with a certificate
// from another CA), 413 over the body limit. A target failing any check is not measured.
import https from 'node:https';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { ROUTE, MAX_BODY_BYTES } from './targets.mjs';

/** One request; resolves { status } or { error } (never rejects). */
function request({ tls, port, cert, key, ca, body, contentLength, headers = {}, timeoutMs = 5000 }) {
  return new Promise((resolve) => {
    let settled = false;
    const done = (v) => { if (!settled) { settled = true; resolve(v); } };
    const mod = tls ? https : http;
    const req = mod.request({
      host: '127.0.0.1', port, path: ROUTE, method: 'POST', agent: false,
      ...(tls ? { ca, cert, key, servername: 'localhost', minVersion: 'TLSv1.3' } : {}),
      // Host agrees with the TLS server name: caddy (strict_sni_host with client auth) answers 421 otherwise
      headers: { host: `localhost:${port}`, 'content-type': 'application/json', 'content-length': contentLength ?? Buffer.byteLength(body), ...headers },
    }, (res) => {
      res.resume();
      res.on('end', () => done({ status: res.statusCode }));
      res.on('error', () => done({ status: res.statusCode }));
    });
    req.setTimeout(timeoutMs, () => { req.destroy(new Error('timeout')); });
    req.on('error', (err) => done({ error: err.code ?? err.message }));
    if (contentLength === undefined) req.end(body);
    else req.write(body); // declared-over-limit probe: send part, never end; the answer must come from the header
  });
}

export async function preflight(target, started, ctx) {
  const { pki } = ctx;
  const ca = readFileSync(pki.caCert);
  const cert = readFileSync(pki.clientCert);
  const key = readFileSync(pki.clientKey);
  const body = readFileSync(ctx.bodies[target.signedBody ? '1k-signed' : '1k']);
  // A target's extra headers: fixed, or made per request (a fresh signature each time).
  const headersFor = (b) => (typeof target.headers === 'function' ? target.headers(ctx, started, b) : target.headers ?? {});
  const base = { tls: target.tls, port: started.port, ca, headers: headersFor(body) };
  const checks = [];

  const ok = await request({ ...base, cert, key, body });
  checks.push({ check: '2xx with certificate', got: ok, pass: ok.status >= 200 && ok.status < 300 });

  if (target.tls) {
    const none = await request({ ...base, body });
    checks.push({ check: 'refused without certificate', got: none, pass: !(none.status >= 200 && none.status < 300) });
    const rogue = await request({ ...base, cert: readFileSync(pki.rogueCert), key: readFileSync(pki.rogueKey), body });
    checks.push({ check: 'refused with a certificate from another CA', got: rogue, pass: !(rogue.status >= 200 && rogue.status < 300) });
  } else {
    checks.push({ check: 'refused without certificate', got: 'n/a (plain HTTP floor)', pass: true, na: true });
  }

  if (target.name !== 'direct') {
    const part = Buffer.alloc(64 * 1024, 0x20);
    const over = await request({ ...base, headers: headersFor(part), cert, key, body: part, contentLength: MAX_BODY_BYTES + 1 });
    checks.push({ check: `413 over ${MAX_BODY_BYTES} bytes (declared)`, got: over, pass: over.status === 413 });
  } else {
    checks.push({ check: '413 over the limit', got: 'n/a (the upstream has no guard limit)', pass: true, na: true });
  }
  return { pass: checks.every((c) => c.pass), checks };
}
