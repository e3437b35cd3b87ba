/**
 * For the reload and drain tests: files written the way operators and the kubelet write them, a
 * steady stream of authorised requests that counts every answer, a TLS probe that reports the
 * server certificate a new handshake sees, and a keep-alive client that says whether it reused
 * its connection.
 */
import { chmodSync, mkdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { readFileSync } from 'node:fs';
import { call, type CallOptions } from './client.ts';
import type { AuditRecord, GuardProcess } from './guard.ts';
import { clientTls, wireBody, type CertFiles } from './pki.ts';

/** Replaces a file in one step (a temporary file renamed over it), as an operator should. */
export function atomicWrite(file: string, content: string | Buffer, mode = 0o600): string {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, file);
  return file;
}

/**
 * A folder laid out like a mounted Kubernetes Secret: `name -> ..data/name`, `..data` a symlink
 * to a timestamped folder. `update` writes a new timestamped folder and swaps `..data` in one
 * rename, the way the kubelet does: the visible files themselves are never written.
 */
export function projectedSecret(dir: string, files: Record<string, string>): { path(name: string): string; update(files: Record<string, string>): void } {
  mkdirSync(dir, { recursive: true });
  let n = 0;
  const linked = new Set<string>();
  const update = (content: Record<string, string>) => {
    const version = `..v${n++}`;
    mkdirSync(join(dir, version));
    for (const [name, text] of Object.entries(content)) writeFileSync(join(dir, version, name), text, { mode: 0o600 });
    let old: string | undefined;
    try {
      old = readlinkSync(join(dir, '..data'));
    } catch {
      old = undefined;
    }
    symlinkSync(version, join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    for (const name of Object.keys(content)) {
      if (!linked.has(name)) symlinkSync(join('..data', name), join(dir, name));
      linked.add(name);
    }
    // Like the kubelet: names no longer in the Secret lose their link after the swap.
    for (const name of [...linked]) {
      if (!(name in content)) {
        rmSync(join(dir, name));
        linked.delete(name);
      }
    }
    if (old) rmSync(join(dir, old), { recursive: true, force: true });
  };
  update(files);
  return { path: (name) => join(dir, name), update };
}

export async function waitFor(cond: () => boolean, ms = 8000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  return cond();
}

/** Operational log lines of one source that changed something, failed, or kept a key. */
export const reloads = (guard: GuardProcess, source: string): AuditRecord[] => guard.operational().filter((l) => l.source === source && l.changed === true);
export const reloadErrors = (guard: GuardProcess, source: string): AuditRecord[] => guard.operational().filter((l) => l.source === source && l.log?.level === 'error');

/** Sends SIGHUP and waits until `source` has logged its SIGHUP reload (changed, unchanged or refused). */
export async function sighup(guard: GuardProcess, source: string): Promise<void> {
  const seen = () => guard.operational().filter((l) => l.source === source && l.trigger === 'SIGHUP').length;
  const before = seen();
  guard.child.kill('SIGHUP');
  if (!(await waitFor(() => seen() > before))) throw new Error(`no SIGHUP reload of ${source} logged`);
}

export interface Traffic {
  /** Answers so far. */
  sent(): number;
  /** Every request that did not get a 200, with what it got. */
  readonly failures: string[];
  /** Resolves once each loop has had `n` more answers (so no request from before is still running). */
  more(n: number): Promise<boolean>;
  stop(): Promise<number>;
}

/**
 * A steady stream of authorised requests: one loop on a keep-alive connection, one opening a
 * new connection per request. `options()` is read before every request, so a test can switch
 * the client to new material. Bounded: stops by itself after `maxMs`.
 */
export function startTraffic(port: number, caFile: string, options: () => CallOptions, maxMs = 60_000): Traffic {
  let stopped = false;
  let sent = 0;
  const byLoop = [0, 0];
  const failures: string[] = [];
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const end = Date.now() + maxMs;
  const loop = async (keepAlive: boolean, index: number) => {
    while (!stopped && Date.now() < end) {
      try {
        const reply = await call(port, caFile, { ...options(), ...(keepAlive ? { agent } : {}) });
        if (reply.status !== 200) failures.push(`${keepAlive ? 'keep-alive' : 'new connection'}: ${reply.status}`);
      } catch (err) {
        failures.push(`${keepAlive ? 'keep-alive' : 'new connection'}: ${(err as Error).message}`);
      }
      sent += 1;
      byLoop[index]! += 1;
    }
  };
  const loops = [loop(true, 0), loop(false, 1)];
  return {
    sent: () => sent,
    failures,
    async more(n) {
      const [a, b] = byLoop as [number, number];
      return waitFor(() => byLoop[0]! >= a + n && byLoop[1]! >= b + n, 10_000);
    },
    async stop() {
      stopped = true;
      await Promise.all(loops);
      agent.destroy();
      return sent;
    },
  };
}

export type Probe = { ok: true; serverSha256: string; resumed: boolean } | { ok: false; error: string };

/**
 * A new TLS handshake: the server certificate it saw, or why it failed. With a client
 * certificate, waits a moment for the server's verdict (TLS 1.3 sends it after the handshake).
 */
export function probeTls(port: number, caFile: string, cert?: CertFiles, session?: Buffer): Promise<Probe & { session?: Buffer }> {
  return new Promise((resolve) => {
    let newSession: Buffer | undefined;
    const socket: TLSSocket = connect({
      host: '127.0.0.1',
      port,
      ...clientTls(caFile, cert),
      ...(session ? { session } : {}),
    });
    const timer = setTimeout(() => finish({ ok: false, error: 'timeout' }), 5000);
    let done = false;
    const finish = (p: Probe) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...p, ...(newSession ? { session: newSession } : {}) });
    };
    socket.on('session', (s: Buffer) => {
      newSession = s;
    });
    socket.on('error', (err: NodeJS.ErrnoException) => finish({ ok: false, error: err.code ?? err.message }));
    socket.on('close', () => finish({ ok: false, error: 'closed by the server' }));
    socket.on('secureConnect', () => {
      // A resumed session carries no server certificate on some runtimes.
      const serverSha256 = socket.getPeerCertificate()?.fingerprint256?.replace(/:/g, '').toLowerCase() ?? '';
      // A refused client certificate ends the connection right after the handshake; a request
      // proves the server kept it.
      socket.write('GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n');
      socket.once('data', () => finish({ ok: true, serverSha256, resumed: socket.isSessionReused() }));
    });
  });
}

/** A client with one keep-alive connection that reports whether each request reused it (extra headers per request, e.g. a bearer credential). */
export function keepAliveClient(port: number, caFile: string, cert: CertFiles) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const ca = readFileSync(caFile);
  const tls = { cert: readFileSync(cert.cert), key: readFileSync(cert.key) };
  return {
    post(path = '/api/replication/apply', headers: Record<string, string> = {}): Promise<{ status: number; reused: boolean; connection: string | undefined }> {
      const body = wireBody(cert);
      return new Promise((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, servername: 'localhost', method: 'POST', path, ca, ...tls, agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers }, timeout: 10_000 }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket, connection: res.headers.connection }));
        });
        req.on('timeout', () => req.destroy(new Error('client timeout')));
        req.on('error', reject);
        req.end(body);
      });
    },
    close: () => agent.destroy(),
  };
}
