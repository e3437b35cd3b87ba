/**
 * Upstreams for the tests: the project's demo backup as a real separate process (it records
 * what reaches it), and in-process servers for failure modes (hanging, slow).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export interface Received {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: Buffer;
}

export interface BackupProcess {
  port: number;
  url: string;
  /** Everything the backup received so far, in order. */
  received(): Received[];
  stop(): Promise<void>;
}

const ROOT = join(import.meta.dirname, '..', '..');

export async function startBackup(options: { delayMs?: number } = {}): Promise<BackupProcess> {
  const record = join(mkdtempSync(join(tmpdir(), 'replguard-backup-')), 'received.ndjson');
  const child: ChildProcess = spawn(process.execPath, [
    join(ROOT, 'demo', 'backup.mjs'), '--port', '0', '--record', record, '--delay-ms', String(options.delayMs ?? 0),
  ], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  const port = (JSON.parse(line) as { listening: { port: number } }).listening.port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    received() {
      if (!existsSync(record)) return [];
      return readFileSync(record, 'utf8').split('\n').filter(Boolean).map((l) => {
        const r = JSON.parse(l) as Received & { body: string };
        return { ...r, body: Buffer.from(r.body, 'base64') };
      });
    },
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
    },
  };
}

/** An upstream that accepts connections and requests but never answers. */
export async function startHangingUpstream(): Promise<{ url: string; hits(): number; stop(): Promise<void> }> {
  let hits = 0;
  const server: Server = createServer(() => {
    hits += 1;
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    hits: () => hits,
    stop: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** A loopback port nobody listens on (bound, then released). */
export async function closedPortUrl(): Promise<string> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

/** What the answering upstream sends for one path. */
export type Answer = (res: import('node:http').ServerResponse) => void;

/**
 * An in-process upstream that answers each path with a scripted response (interim 1xx answers,
 * its own Server headers, a leaky error page), and records what reached it.
 */
export async function startAnsweringUpstream(answers: Record<string, Answer>): Promise<{ url: string; received(): Received[]; stop(): Promise<void> }> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers as Record<string, string>, body: Buffer.concat(chunks) });
      const answer = answers[req.url ?? ''];
      if (answer) answer(res);
      else {
        res.writeHead(404, { 'content-length': '0' });
        res.end();
      }
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    received: () => received,
    stop: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
