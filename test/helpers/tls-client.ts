/**
 * Raw TLS clients for the abuse tests: bytes written by hand (smuggling forms, slow headers),
 * a chosen loopback source address (127.0.0.0/8 is all loopback on Linux, so one machine can
 * play many clients), and what came back before the guard closed the connection.
 */
import { request } from 'node:https';
import { connect, type TLSSocket } from 'node:tls';
import { clientTls, wireBody, type CertFiles } from './pki.ts';

export interface RawResult {
  /** Everything the guard sent. */
  text: string;
  /** The status of the first response, or 0 when there was none. */
  status: number;
  /** True when the guard closed the connection (false when we gave up waiting). */
  closedByServer: boolean;
}

export interface RawOptions {
  cert?: CertFiles;
  localAddress?: string;
  /** Give up after this long (the result then says closedByServer: false). */
  timeoutMs?: number;
}

export function tlsConnect(port: number, caFile: string, options: RawOptions = {}): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: '127.0.0.1',
      port,
      ...clientTls(caFile, options.cert),
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Collects what the guard sends until it closes the connection, or until the timeout. */
export function collect(socket: TLSSocket, timeoutMs = 5000): Promise<RawResult> {
  return new Promise((resolve) => {
    let text = '';
    const finish = (closedByServer: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ text, status: m ? Number(m[1]) : 0, closedByServer });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.once('close', () => finish(true));
  });
}

/** Sends `bytes` over a fresh mTLS connection and collects the answer. */
export async function rawRequest(port: number, caFile: string, bytes: string | Buffer, options: RawOptions = {}): Promise<RawResult> {
  const socket = await tlsConnect(port, caFile, options);
  const result = collect(socket, options.timeoutMs);
  socket.write(bytes);
  return result;
}

export interface SimpleReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * A POST from a chosen source address. Resolves with the answer, or with status 0 when the
 * connection was refused or cut without one (a ban at the TLS layer).
 */
export function post(port: number, caFile: string, options: { cert?: CertFiles; localAddress?: string; path?: string; body?: string; agent?: import('node:https').Agent } = {}): Promise<SimpleReply> {
  return new Promise((resolve) => {
    const body = options.body ?? wireBody(options.cert);
    const req = request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: options.path ?? '/api/replication/apply',
      ...clientTls(caFile, options.cert),
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      agent: options.agent ?? false,
      timeout: 10_000,
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      res.on('error', () => resolve({ status: 0, headers: {}, body: '' }));
    });
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', () => resolve({ status: 0, headers: {}, body: '' }));
    req.end(body);
  });
}
