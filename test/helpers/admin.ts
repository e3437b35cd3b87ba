/**
 * Plain-HTTP GET on the admin listener, on a fresh connection each time: Node's global agent keeps
 * sockets alive, and one the server closed at its keep-alive timeout while the test was busy (a
 * spawnSync of promtool) is a "socket hang up" on reuse, a race unrelated to what is tested.
 */
import { get } from 'node:http';

export function adminGet(port: number, path: string): Promise<{ status: number; contentType: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path, timeout: 5000, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type']), body }));
    });
    req.on('timeout', () => req.destroy(new Error('admin timeout')));
    req.on('error', reject);
  });
}
