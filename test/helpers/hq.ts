/**
 * A small HQ for the tests: an HTTPS server on loopback (port 0) that serves one registry
 * document with an ETag, answers 304 to a matching If-None-Match, and requires a client
 * certificate of the test CA (the TLS handshake fails without one). It records every request
 * (the client certificate's CN, the If-None-Match sent, the status answered) and can be told to
 * answer with another status, or be stopped and started again on the same port (HQ down).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { TestPki } from './pki.ts';

export interface HqRequest {
  readonly cn: string | undefined;
  readonly ifNoneMatch: string | undefined;
  readonly status: number;
}

export interface Hq {
  readonly url: string;
  readonly port: number;
  /** The ETag of the published document. */
  etag(): string | undefined;
  /** Publishes a document (its ETag is from its SHA-256); `undefined` answers 404. */
  publish(jws: string | undefined): void;
  /** Answers every request with this status and no document (undefined: back to normal). */
  failWith(status: number | undefined): void;
  requests(): readonly HqRequest[];
  /** HQ down: the listener closes, open connections are cut. */
  down(): Promise<void>;
  /** HQ back on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startHq(pki: TestPki): Promise<Hq> {
  let document: string | undefined;
  let etag: string | undefined;
  let failing: number | undefined;
  const seen: HqRequest[] = [];
  const make = (): Server =>
    createServer(
      {
        cert: readFileSync(pki.server.cert),
        key: readFileSync(pki.server.key),
        ca: readFileSync(pki.caFile),
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: 'TLSv1.3',
      },
      (req, res) => {
        const peer = (req.socket as TLSSocket).getPeerCertificate();
        const cn = typeof peer?.subject?.CN === 'string' ? peer.subject.CN : undefined;
        const ifNoneMatch = typeof req.headers['if-none-match'] === 'string' ? req.headers['if-none-match'] : undefined;
        const answer = (status: number, body?: string) => {
          seen.push({ cn, ifNoneMatch, status });
          res.writeHead(status, { ...(body !== undefined ? { 'content-type': 'application/jose', etag: etag! } : {}), connection: 'close' });
          res.end(body);
        };
        if (failing !== undefined) answer(failing);
        else if (document === undefined) answer(404);
        else if (ifNoneMatch === etag) answer(304);
        else answer(200, document);
      },
    );
  let server = make();
  const listen = (port: number) => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  await listen(0);
  const port = (server.address() as AddressInfo).port;
  const stop = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return {
    // By address: the certificate names localhost, which the guard checks through tls.server_name.
    url: `https://127.0.0.1:${port}/registry.jws`,
    port,
    etag: () => etag,
    publish(jws) {
      document = jws;
      etag = jws === undefined ? undefined : `"${createHash('sha256').update(jws).digest('hex').slice(0, 32)}"`;
    },
    failWith(status) {
      failing = status;
    },
    requests: () => seen,
    down: stop,
    async up() {
      server = make();
      await listen(port);
    },
    close: () => (server.listening ? stop() : Promise.resolve()),
  };
}
