/**
 * An in-process upstream whose failure mode is chosen by the request path, so one guard can
 * reach every upstream outcome: `/hang` never answers, `/refuse` drops the connection before
 * answering, `/abort` starts a response and breaks it off; any other path gets 200.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';

export async function startScriptedUpstream(): Promise<{ url: string; hits(path: string): number; stop(): Promise<void> }> {
  const hits = new Map<string, number>();
  // Large heads are accepted: header limits are the guard's job, not this upstream's.
  const server: Server = createServer({ maxHeaderSize: 1024 * 1024 }, (req, res) => {
    const path = req.url ?? '';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    req.resume();
    req.on('end', () => {
      if (path === '/hang') return;
      if (path === '/refuse') {
        req.socket.destroy();
        return;
      }
      if (path === '/abort') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
        res.write('{"partial":');
        setTimeout(() => req.socket.destroy(), 20);
        return;
      }
      const body = JSON.stringify({ applied: true });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    hits: (path) => hits.get(path) ?? 0,
    stop: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

export interface ScriptedBackup {
  url: string;
  /** Bodies received, in order of arrival (each one is a delivery to the backup). */
  bodies(): Buffer[];
  /** How many times this exact body arrived. */
  count(body: Buffer | string): number;
  /**
   * How the next requests are answered: `answer` 200 `{"applied":<n>}` at once; `hold` keeps
   * each one open until release(); `status` answers that status with `{"busy":true}`.
   */
  set(mode: { kind: 'answer' } | { kind: 'hold' } | { kind: 'status'; status: number }): void;
  /** Resolves once `n` bodies have arrived. */
  arrived(n: number): Promise<void>;
  /** Answers every held request (200 `{"applied":<n>}`). */
  release(): void;
  stop(): Promise<void>;
}

/** A backup that applies whatever reaches it and is told by the test when to answer. */
export async function startScriptedBackup(): Promise<ScriptedBackup> {
  const bodies: Buffer[] = [];
  let mode: Parameters<ScriptedBackup['set']>[0] = { kind: 'answer' };
  const held: Array<() => void> = [];
  const waiters: Array<() => void> = [];
  const applied = (res: import('node:http').ServerResponse, n: number) => {
    const body = JSON.stringify({ applied: n });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks));
      const n = bodies.length;
      for (const w of waiters.splice(0)) w();
      if (mode.kind === 'hold') held.push(() => applied(res, n));
      else if (mode.kind === 'status') {
        res.writeHead(mode.status, { 'content-type': 'application/json', 'content-length': 13 });
        res.end('{"busy":true}');
      } else applied(res, n);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    bodies: () => bodies,
    count: (body) => bodies.filter((b) => b.equals(Buffer.from(body))).length,
    set: (m) => {
      mode = m;
    },
    arrived: (n) => new Promise((resolve) => {
      const check = () => (bodies.length >= n ? resolve() : waiters.push(check));
      check();
    }),
    release: () => {
      for (const answer of held.splice(0)) answer();
    },
    stop: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
