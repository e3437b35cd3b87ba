// Throwaway PKI (openssl CLI), request bodies, and the client-certificate preload shim for wrk.
import { execFileSync } from 'node:child_process';
import { writeFileSync, readFileSync, chmodSync, existsSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

function openssl(args, cwd) {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * A CA, a server certificate for 127.0.0.1/localhost and a client certificate with CN calgary-01
 * (the authorised peer), plus a second client signed by a different CA for the "refused" preflight.
 * ECDSA P-256 everywhere, so every target does the same handshake work.
 */
export function makePki(dir) {
  const ext = (name, body) => { writeFileSync(path.join(dir, name), body); return name; };
  const key = (name) => {
    openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', name], dir);
    chmodSync(path.join(dir, name), 0o600);
  };
  const ca = (name, cn) => {
    key(`${name}.key`);
    openssl(['req', '-x509', '-new', '-key', `${name}.key`, '-sha256', '-days', '2', '-subj', `/CN=${cn}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
      '-out', `${name}.crt`], dir);
  };
  const leaf = (name, cn, caName, extFile) => {
    key(`${name}.key`);
    openssl(['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`], dir);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${caName}.crt`, '-CAkey', `${caName}.key`,
      '-CAcreateserial', '-days', '2', '-sha256', '-extfile', extFile, '-out', `${name}.crt`], dir);
  };
  ca('ca', 'replguard-bench CA');
  ca('rogue-ca', 'rogue CA');
  const serverExt = ext('server.ext', 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n' +
    'extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n');
  const clientExtText = (name) => 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n' +
    `extendedKeyUsage=clientAuth\nsubjectAltName=DNS:${name}\n`;
  const clientExt = ext('client.ext', clientExtText('calgary-01'));
  leaf('server', 'localhost', 'ca', serverExt);
  leaf('client', 'calgary-01', 'ca', clientExt);
  leaf('rogue-client', 'calgary-01', 'rogue-ca', clientExt);
  // the flood scenario's valid certificates of other names (lib/flood.mjs): toronto-02 (a peer
  // of replguard-full only) and intruder-99 (a peer nowhere)
  leaf('flood-peer', 'toronto-02', 'ca', ext('flood-peer.ext', clientExtText('toronto-02')));
  leaf('intruder', 'intruder-99', 'ca', ext('intruder.ext', clientExtText('intruder-99')));
  // haproxy wants certificate and key in one file
  writeFileSync(path.join(dir, 'server.pem'),
    readFileSync(path.join(dir, 'server.crt'), 'utf8') + readFileSync(path.join(dir, 'server.key'), 'utf8'), { mode: 0o600 });
  const p = (f) => path.join(dir, f);
  return {
    dir, caCert: p('ca.crt'), serverCert: p('server.crt'), serverKey: p('server.key'), serverPem: p('server.pem'),
    clientCert: p('client.crt'), clientKey: p('client.key'),
    rogueCert: p('rogue-client.crt'), rogueKey: p('rogue-client.key'),
    floodPeerCert: p('flood-peer.crt'), floodPeerKey: p('flood-peer.key'),
    intruderCert: p('intruder.crt'), intruderKey: p('intruder.key'),
  };
}

/**
 * The replication wire format, padded to exactly `size` bytes:
 * {"source_pop":"calgary-01","entries":[...],"timestamp":<unix s>,"nonce":"..."}
 */
/**
 * A replication body of exactly `size` bytes. With `signed: true` it leaves out the optional
 * `timestamp` and `nonce` fields, which a signed request's body must otherwise repeat from its
 * headers: one body then serves many pre-signed requests.
 */
export function makeBody(size, { timestamp = Math.floor(Date.now() / 1000), nonce = randomBytes(16).toString('hex'), signed = false } = {}) {
  const entry = (seq, value) => ({ seq, op: 'upsert', table: 'backups', key: `k-${String(seq).padStart(8, '0')}`, value });
  const render = (entries) => JSON.stringify(signed ? { source_pop: 'calgary-01', entries } : { source_pop: 'calgary-01', entries, timestamp, nonce });
  const entries = [];
  const filler = 'x'.repeat(900);
  while (render([...entries, entry(entries.length, filler), entry(entries.length + 1, '')]).length < size) {
    entries.push(entry(entries.length, filler));
  }
  const last = entry(entries.length, '');
  const base = render([...entries, last]).length;
  if (base > size) throw new Error(`cannot pad a body to ${size} bytes`);
  last.value = 'y'.repeat(size - base);
  const body = render([...entries, last]);
  if (Buffer.byteLength(body) !== size) throw new Error('body size mismatch');
  return body;
}

/** Compile the LD_PRELOAD shim that makes wrk present a client certificate (cached by mtime). */
export function buildShim(kitDir, outDir) {
  const src = path.join(kitDir, 'sslcert_preload.c');
  const out = path.join(outDir, 'sslcert_preload.so');
  if (!existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs) {
    execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-o', out, src, '-ldl'], { stdio: ['ignore', 'inherit', 'inherit'] });
  }
  return out;
}
