/**
 * Raw bytes over TLS, for requests an HTTP client will not send (malformed, partial, stalled)
 * and for TLS clients with unusual settings. Resolves with everything the server sent once
 * the server closes the connection (or after `ms`, then the socket is destroyed).
 */
import { connect as netConnect } from 'node:net';
import { connect, type ConnectionOptions } from 'node:tls';
import { clientTls, type CertFiles } from './pki.ts';

export interface RawOptions {
  cert?: CertFiles;
  /** Bytes to send, in order; a number waits that many milliseconds. */
  send?: Array<string | Buffer | number>;
  /** Half-close after sending. */
  end?: boolean;
  /** Destroy the socket after sending (a client that vanishes mid-request). */
  destroy?: boolean;
  tls?: Partial<ConnectionOptions>;
  ms?: number;
}

export function rawTls(port: number, caFile: string, options: RawOptions = {}): Promise<{ text: string; error?: string }> {
  return new Promise((resolve) => {
    let text = '';
    let settled = false;
    const socket = connect({
      host: '127.0.0.1',
      port,
      ...clientTls(caFile, options.cert),
      ...options.tls,
    });
    const done = (error?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, ...(error !== undefined ? { error } : {}) });
    };
    const timer = setTimeout(() => done('timeout'), options.ms ?? 10_000);
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (text += d));
    socket.on('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
    socket.on('close', () => done());
    socket.once('secureConnect', async () => {
      for (const part of options.send ?? []) {
        if (typeof part === 'number') await new Promise((r) => setTimeout(r, part));
        else if (!socket.destroyed) socket.write(part);
      }
      if (options.destroy) {
        // Let the bytes leave before the reset.
        setTimeout(() => done(), 50);
        return;
      }
      if (options.end) socket.end();
    });
  });
}

/**
 * Plain TCP to the TLS port: `bytes` written at once (empty: nothing is sent, as a client that
 * never starts its handshake). Resolves with what came back once the guard closes (or after `ms`).
 */
export function rawTcp(port: number, bytes: string, ms = 10_000, localAddress?: string): Promise<{ text: string; closedByServer: boolean }> {
  return new Promise((resolve) => {
    let text = '';
    let settled = false;
    const socket = netConnect({ host: '127.0.0.1', port, ...(localAddress ? { localAddress } : {}) });
    const done = (closedByServer: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closedByServer });
    };
    const timer = setTimeout(() => done(false), ms);
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (text += d));
    socket.on('error', () => done(true));
    socket.on('close', () => done(true));
    socket.on('connect', () => {
      if (bytes) socket.write(bytes);
    });
  });
}
