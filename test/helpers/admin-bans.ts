/** Requests to the guard's admin listener (plain HTTP, loopback unless `host` says otherwise), JSON answers parsed (ban administration). */
import { request } from 'node:http';

export interface AdminOptions {
  /** Where the admin listener is bound (default 127.0.0.1). */
  readonly host?: string;
  /** The source address to connect from (default: whatever the route to `host` picks). */
  readonly localAddress?: string;
  readonly headers?: Record<string, string | string[]>;
}

export function admin(port: number, method: string, path: string, options: AdminOptions = {}): Promise<{ status: number; body: any; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: options.host ?? '127.0.0.1', port, method, path, localAddress: options.localAddress, headers: options.headers, timeout: 5000 }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text === '' ? undefined : JSON.parse(text), headers: res.headers }));
    });
    req.on('timeout', () => req.destroy(new Error('admin timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** `Authorization: Bearer <token>`, as a header object. */
export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
