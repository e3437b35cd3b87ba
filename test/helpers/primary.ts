/** The unmodified primary's replication client, for the signer's tests: plain HTTP to the signer on loopback. */
import { request } from 'node:http';

export interface PrimaryReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export function primaryPost(port: number, body: string, options: { method?: string; path?: string } = {}): Promise<PrimaryReply> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port, method: options.method ?? 'POST', path: options.path ?? '/api/replication/apply',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, agent: false, timeout: 20_000,
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('timeout', () => req.destroy(new Error('primary timeout')));
    req.on('error', reject);
    req.end(body);
  });
}
