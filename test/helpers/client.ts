/** An HTTPS client for the tests: optional client certificate, raw results, never throws on status. */
import { request, type Agent } from 'node:https';
import { clientTls, wireBody, type CertFiles } from './pki.ts';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface CallOptions {
  method?: string;
  path?: string;
  body?: string | Buffer;
  headers?: Record<string, string | number>;
  cert?: CertFiles;
  agent?: Agent;
  timeoutMs?: number;
  /** The client's source address (127.0.0.0/8 on loopback), e.g. to tell attacker and POP apart. */
  localAddress?: string;
}

export function call(port: number, caFile: string, options: CallOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const body = options.body ?? wireBody(options.cert);
    const req = request({
      host: '127.0.0.1',
      port,
      method: options.method ?? 'POST',
      path: options.path ?? '/api/replication/apply',
      ...clientTls(caFile, options.cert),
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
      headers: { 'content-type': 'application/json', ...(options.method === 'GET' ? {} : { 'content-length': Buffer.byteLength(body) }), ...options.headers },
      agent: options.agent ?? false,
      timeout: options.timeoutMs ?? 10_000,
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    if (options.method !== 'GET') req.end(body);
    else req.end();
  });
}

/** True when the TLS connection or the request failed without an HTTP answer. */
export async function refusedAtConnection(port: number, caFile: string, options: CallOptions = {}): Promise<boolean> {
  try {
    await call(port, caFile, options);
    return false;
  } catch {
    return true;
  }
}
