// registry/hq-source.ts against a real HTTPS server on loopback: what an answer may be (size,
// status, ETag), the deadline, and HQ's certificate verified by chain and name. Failures are
// asserted by their code.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import t, { type Test } from 'tap';
import { checkRegistryUrl, fetchRegistry, loadHqTls, SourceError, type HqTlsMaterial } from '../../../src/registry/hq-source.ts';
import type { ConfigError } from '../../../src/config/errors.ts';
import { makePki } from '../../helpers/pki.ts';

const pki = makePki([]);
const pop = pki.client('zurich-01');
const material: HqTlsMaterial = loadHqTls({ ca_file: pki.caFile, cert_file: pop.cert, key_file: pop.key }, Date.now());

async function serve(t: Test, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server: Server = createServer({ cert: readFileSync(pki.server.cert), key: readFileSync(pki.server.key), ca: readFileSync(pki.caFile), requestCert: true, rejectUnauthorized: true }, handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}/registry.jws`;
}

const code = async (promise: Promise<unknown>): Promise<string> => {
  try {
    await promise;
    return 'resolved';
  } catch (err) {
    return err instanceof SourceError ? err.code : `not a SourceError: ${String(err)}`;
  }
};

t.test('a document with a well-formed ETag; a malformed ETag is not kept', async (t) => {
  let tag = '"abc-1"';
  const url = await serve(t, (_req, res) => {
    res.writeHead(200, { etag: tag });
    res.end('header.payload.signature');
  });
  t.same(await fetchRegistry(url, material, { timeoutMs: 5000, serverName: 'localhost' }), { kind: 'document', text: 'header.payload.signature', etag: '"abc-1"' });
  tag = 'no quotes';
  t.same(await fetchRegistry(url, material, { timeoutMs: 5000, serverName: 'localhost' }), { kind: 'document', text: 'header.payload.signature' });
});

t.test('If-None-Match is sent; 304 is "unchanged" only for a conditional request', async (t) => {
  const seen: Array<string | undefined> = [];
  const url = await serve(t, (req, res) => {
    seen.push(req.headers['if-none-match'] as string | undefined);
    res.writeHead(304);
    res.end();
  });
  t.same(await fetchRegistry(url, material, { timeoutMs: 5000, serverName: 'localhost', etag: '"v1"' }), { kind: 'not-modified' });
  t.equal(await code(fetchRegistry(url, material, { timeoutMs: 5000, serverName: 'localhost' })), 'REGISTRY_SOURCE_STATUS');
  t.same(seen, ['"v1"', undefined]);
});

t.test('a redirect or an error status is no document', async (t) => {
  let status = 302;
  const url = await serve(t, (_req, res) => {
    res.writeHead(status, { location: 'https://elsewhere.invalid/' });
    res.end('moved');
  });
  t.equal(await code(fetchRegistry(url, material, { timeoutMs: 5000, serverName: 'localhost' })), 'REGISTRY_SOURCE_STATUS', 'redirects are not followed');
  status = 503;
  t.equal(await code(fetchRegistry(url, material, { timeoutMs: 5000, serverName: 'localhost' })), 'REGISTRY_SOURCE_STATUS');
});

t.test('an answer over the size limit, declared or streamed, is refused', async (t) => {
  let declare = true;
  const url = await serve(t, (_req, res) => {
    if (declare) res.writeHead(200, { 'content-length': '2048' });
    else res.writeHead(200);
    res.end('x'.repeat(2048));
  });
  t.equal(await code(fetchRegistry(url, material, { timeoutMs: 5000, serverName: 'localhost', maxBytes: 1024 })), 'REGISTRY_SOURCE_TOO_LARGE', 'declared');
  declare = false;
  t.equal(await code(fetchRegistry(url, material, { timeoutMs: 5000, serverName: 'localhost', maxBytes: 1024 })), 'REGISTRY_SOURCE_TOO_LARGE', 'streamed (chunked)');
});

t.test('no complete answer within the deadline: a timeout', async (t) => {
  const url = await serve(t, (_req, res) => {
    res.writeHead(200);
    res.write('half a doc'); // and never the end
  });
  t.equal(await code(fetchRegistry(url, material, { timeoutMs: 500, serverName: 'localhost' })), 'REGISTRY_SOURCE_TIMEOUT');
});

t.test('HQ\'s certificate must chain to the CA and carry the name', async (t) => {
  const url = await serve(t, (_req, res) => res.end('doc'));
  t.equal(await code(fetchRegistry(url, material, { timeoutMs: 5000, serverName: 'hq.example.org' })), 'REGISTRY_SOURCE_TLS', 'another name');
  const other = makePki([]);
  const foreignTrust = { ...material, ca: readFileSync(other.caFile, 'utf8') };
  t.equal(await code(fetchRegistry(url, foreignTrust, { timeoutMs: 5000, serverName: 'localhost' })), 'REGISTRY_SOURCE_TLS', 'another CA');
  t.equal(await code(fetchRegistry('https://127.0.0.1:1/registry.jws', material, { timeoutMs: 5000 })), 'REGISTRY_SOURCE_UNREACHABLE', 'nothing listens');
});

t.test('operator mistakes: a URL that is not https, a key readable by others, a key of another certificate', async (t) => {
  t.equal(checkRegistryUrl('https://hq.example.org/registry.jws'), undefined);
  t.match(checkRegistryUrl('http://hq.example.org/registry.jws'), /not https/);
  t.match(checkRegistryUrl('https://u:p@hq.example.org/'), /user:password/);
  t.match(checkRegistryUrl('not a url'), /not a URL/);
  const paths = (tls: Parameters<typeof loadHqTls>[0]) => {
    try {
      loadHqTls(tls, Date.now());
      return [];
    } catch (err) {
      return (err as ConfigError).problems.map((p) => p.path);
    }
  };
  const other = pki.client('oslo-01');
  t.same(paths({ ca_file: pki.caFile, cert_file: pop.cert, key_file: other.key }), ['control_plane.tls.key_file'], 'a key that is not the certificate\'s');
  t.same(paths({ ca_file: pki.caFile, cert_file: pop.cert, key_file: pki.caFile }), ['control_plane.tls.key_file'], 'not a key');
  t.same(paths({ ca_file: pop.cert, cert_file: pop.cert, key_file: pop.key }), ['control_plane.tls.ca_file'], 'a leaf is no CA');
});
