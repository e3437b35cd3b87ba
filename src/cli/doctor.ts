/**
 * `replguard doctor -c FILE [--timeout 5s]`: what an operator runs when it does not work. One
 * line per check, `ok` or `FAIL` with the problem and its fix (`warn`: works today, will hurt
 * soon); exit 1 on any FAIL. The checks: the config (every check of check-config), every file it
 * names (mode, owner), the certificates (chain order, expiry, names against `listen`), the
 * CRL's freshness (cli/soon-checks.ts, shared with check-config), that the upstream answers
 * (the guard's backup service: a TCP connection; the signer's remote guard: a verified TLS
 * handshake), that Redis answers PING when configured, and that the listeners can bind. It
 * sends no replication request: no HTTP request at all.
 */
import type { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createConnection, createServer, isIP } from 'node:net';
import process from 'node:process';
import { connect as tlsConnect } from 'node:tls';
import { Redis } from 'ioredis';
import { ConfigError, type ConfigProblem } from '../config/errors.ts';
import { readPasswordFile } from '../config/files.ts';
import type { LoadedRoleConfig } from '../config/load.ts';
import { configFiles } from '../config/print.ts';
import { parseDuration } from '../config/units.ts';
import { listenOrExplain } from '../service/listen.ts';
import { loadTlsMaterial, parseCertificates, type TlsMaterial } from '../tls/material.ts';
import { parseCommandArgs, stringArg } from './args.ts';
import { loadRoleConfig } from './role-config.ts';
import { soonWarnings } from './soon-checks.ts';

export type Verdict = 'ok' | 'warn' | 'FAIL';

export interface Finding {
  readonly verdict: Verdict;
  /** What was checked: a config key or a named check. */
  readonly subject: string;
  /** ok: what was found; warn/FAIL: the problem and its fix. */
  readonly detail: string;
}

interface DoctorContext {
  readonly loaded: LoadedRoleConfig;
  readonly timeoutMs: number;
  readonly now: number;
  material?: TlsMaterial;
}

/** One check: its findings (async when it talks to the network). A new check is one more entry of DOCTOR_CHECKS. */
type DoctorCheck = (context: DoctorContext) => Finding[] | Promise<Finding[]>;

const ok = (subject: string, detail: string): Finding => ({ verdict: 'ok', subject, detail });
const fail = (subject: string, detail: string): Finding => ({ verdict: 'FAIL', subject, detail });
const fromProblem = (verdict: Verdict) => (p: ConfigProblem): Finding => ({ verdict, subject: p.path || 'config', detail: p.message });

/** Each file the config names: its mode and owner (the config load has refused unsafe ones already). */
const files: DoctorCheck = ({ loaded }) => configFiles(loaded.role, loaded.config).map(({ path, file }) => {
  try {
    const st = statSync(file);
    return ok(path, `${file} (mode ${(st.mode & 0o777).toString(8).padStart(3, '0')}, owner uid ${st.uid} gid ${st.gid})`);
  } catch (err) {
    // audit.file may not exist yet: it is created at start-up in a folder the config checks found writable.
    if (path === 'audit.file' && (err as NodeJS.ErrnoException).code === 'ENOENT') return ok(path, `${file} (created at start-up)`);
    return fail(path, `${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}; create it or fix the path`);
  }
});

function sans(cert: X509Certificate): string {
  return cert.subjectAltName ?? 'none';
}

/** The chain of a PEM file in order: each certificate issued by the next one. */
function chainOrder(subject: string, certs: readonly X509Certificate[]): Finding | undefined {
  for (let i = 0; i + 1 < certs.length; i++) {
    const [child, parent] = [certs[i]!, certs[i + 1]!];
    if (!child.checkIssued(parent) || !child.verify(parent.publicKey)) {
      return fail(subject, `certificate ${i + 1} ("${child.subject.replace(/\n/g, ', ')}") is not issued by certificate ${i + 2} of the file; put the leaf first, then each issuer in order`);
    }
  }
  return undefined;
}

/** The guard's TLS material as serve loads it; the server certificate's chain, validity and names. */
const guardCertificates: DoctorCheck = (context) => {
  const { loaded } = context;
  if (loaded.role !== 'backup') return [];
  const { tls, listen } = loaded.config;
  try {
    context.material = loadTlsMaterial(tls, context.now);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems.map(fromProblem('FAIL'));
  }
  const chain = parseCertificates(readFileSync(tls.cert_file, 'utf8'));
  const leaf = context.material.serverCertificate;
  const out: Finding[] = [];
  const order = chainOrder('tls.cert_file', chain);
  if (order) out.push(order);
  const wildcard = ['0.0.0.0', '::', ''].includes(listen.host);
  const matches = wildcard || (isIP(listen.host) ? leaf.checkIP(listen.host) !== undefined : leaf.checkHost(listen.host) !== undefined);
  if (!matches) out.push(fail('tls.cert_file', `the server certificate does not name listen.host ${listen.host} (its names: ${sans(leaf)}); clients that connect by that name refuse it: issue a certificate with it as a SAN`));
  out.push(ok('tls.cert_file', `"${leaf.subject.replace(/\n/g, ', ')}", valid until ${leaf.validTo}, names ${sans(leaf)}${wildcard ? ` (listen.host ${listen.host}: clients must use one of these names in their backup.url)` : ''}`));
  out.push(ok('tls.client_ca_file', `${context.material.caCertificates.length} CA certificate(s): ${context.material.caCertificates.map((c) => `"${c.subject.replace(/\n/g, ', ')}"`).join(', ')}`));
  if (context.material.crls) {
    for (const crl of context.material.crls.values()) {
      if (crl.nextUpdateMs === undefined || crl.nextUpdateMs > context.now) out.push(ok('tls.crl_file', `CRL of ${crl.issuer}, next update ${crl.nextUpdateMs === undefined ? 'not stated' : new Date(crl.nextUpdateMs).toISOString()}`));
    }
  }
  return out;
};

/**
 * What will hurt soon (cli/soon-checks.ts): a CRL past its nextUpdate or an expired certificate
 * fails today; the rest warn. When the guard's TLS material was refused, its problems are listed
 * already: its files are not judged twice.
 */
const soon: DoctorCheck = ({ loaded, now, material }) => soonWarnings(loaded, { now, crls: material?.crls })
  .filter((p) => loaded.role !== 'backup' || material !== undefined || !p.path.startsWith('tls.'))
  .map((p) => (
  p.path === 'tls.crl_file' || / expired /.test(p.message) ? fromProblem('FAIL')(p) : fromProblem('warn')(p)
));

function tcpAnswers(host: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (error: string | undefined) => {
      socket.destroy();
      resolve(error);
    };
    socket.setTimeout(timeoutMs, () => done(`no answer within ${timeoutMs} ms`));
    socket.once('connect', () => done(undefined));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
  });
}

/** The guard's upstream: a TCP connection, no request. The signer's remote guard: a TLS handshake verified as the signer verifies it, no request. */
const upstream: DoctorCheck = async ({ loaded, timeoutMs }) => {
  if (loaded.role === 'backup') {
    const url = new URL(loaded.config.upstream.url);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    const error = await tcpAnswers(host, port, timeoutMs);
    return [error === undefined
      ? ok('upstream.url', `${url.origin} accepts connections`)
      : fail('upstream.url', `${url.origin} does not answer (${error}): start the backup service, or fix upstream.url`)];
  }
  const { backup, client_tls } = loaded.config;
  const url = new URL(backup.url);
  const servername = backup.server_name ?? url.hostname.replace(/^\[|\]$/g, '');
  const error = await new Promise<string | undefined>((resolve) => {
    const socket = tlsConnect({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port || 443),
      ...(isIP(servername) ? {} : { servername }),
      ca: readFileSync(backup.ca_file),
      minVersion: backup.min_tls_version,
      ...(client_tls ? { cert: readFileSync(client_tls.cert_file), key: readFileSync(client_tls.key_file) } : {}),
    });
    const done = (e: string | undefined) => {
      socket.destroy();
      resolve(e);
    };
    socket.setTimeout(timeoutMs, () => done(`no answer within ${timeoutMs} ms`));
    socket.once('secureConnect', () => done(socket.authorized ? undefined : String(socket.authorizationError)));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
  });
  return [error === undefined
    ? ok('backup.url', `${url.origin}: TLS handshake verified against backup.ca_file as ${servername}`)
    : fail('backup.url', `${url.origin}: ${error}: check that the guard runs and is reachable, that backup.ca_file is the CA of its certificate and that the certificate names ${servername} (backup.server_name)`)];
};

/** Redis (store.type: redis): PING, with the configured password and TLS. */
const redis: DoctorCheck = async ({ loaded, timeoutMs }) => {
  if (loaded.role !== 'backup' || loaded.config.store.type !== 'redis') return [];
  const store = loaded.config.store;
  const url = new URL(store.url!);
  const client = new Redis(store.url!, {
    lazyConnect: true,
    ...(store.password_file !== undefined ? { password: readPasswordFile(store.password_file) } : {}),
    ...(url.protocol === 'rediss:' ? { tls: { servername: url.hostname, ...(store.ca_file !== undefined ? { ca: readFileSync(store.ca_file) } : {}) } } : {}),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const pong = await client.ping();
    return [ok('store.url', `${url.host} answers PING (${pong})`)];
  } catch (err) {
    return [fail('store.url', `${url.host} does not answer (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): start Redis, or fix store.url, store.password_file, store.ca_file`)];
  } finally {
    client.disconnect();
  }
};

async function bindable(host: string, port: number, keyPath: string): Promise<Finding> {
  if (port === 0) return ok(keyPath, `${host}:0 (a free port is picked at start-up)`);
  const server = createServer();
  try {
    await listenOrExplain(server, host, port, keyPath);
    return ok(keyPath, `${host}:${port} can be bound`);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return fail(keyPath, `${err.problems[0]!.message}${/EADDRINUSE/.test(err.problems[0]!.message) ? ' (is replguard already running?)' : ''}`);
  } finally {
    server.close();
  }
}

/** The admin listener and the main listener can bind (each released at once). */
const listeners: DoctorCheck = async ({ loaded }) => [
  await bindable(loaded.config.admin.host, loaded.config.admin.port, 'admin.port'),
  await bindable(loaded.config.listen.host, loaded.config.listen.port, 'listen.port'),
];

/** Every check, in report order. */
export const DOCTOR_CHECKS: readonly DoctorCheck[] = [files, guardCertificates, soon, upstream, redis, listeners];

export async function run(argv: string[]): Promise<number> {
  const args = parseCommandArgs('doctor', argv);
  const timeoutMs = parseDuration(stringArg(args, 'timeout') ?? '5s');
  if (timeoutMs === undefined || timeoutMs < 1) throw new ConfigError([{ path: 'replguard doctor --timeout', message: 'not a duration, e.g. 5s' }]);
  const findings: Finding[] = [];
  const print = (f: Finding) => {
    findings.push(f);
    process.stdout.write(`${f.verdict.padEnd(4)}  ${f.subject}: ${f.detail}\n`);
  };
  let loaded: LoadedRoleConfig;
  try {
    loaded = loadRoleConfig(stringArg(args, 'config')!);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // Nothing else can be checked without a config: each of its problems, then stop.
    for (const p of err.problems) print(fromProblem('FAIL')(p));
    process.stdout.write('doctor: the config is refused; fix the problems above, then run doctor again\n');
    return 1;
  }
  print(ok('config', `${loaded.file} (role ${loaded.role}: the ${loaded.role === 'backup' ? 'guard' : 'signer'})`));
  for (const w of loaded.warnings) print(fromProblem('warn')(w));
  const context: DoctorContext = { loaded, timeoutMs, now: Date.now() };
  for (const check of DOCTOR_CHECKS) for (const f of await check(context)) print(f);
  const failed = findings.filter((f) => f.verdict === 'FAIL').length;
  process.stdout.write(failed === 0 ? 'doctor: no problem found\n' : `doctor: ${failed} problem${failed > 1 ? 's' : ''} found\n`);
  return failed === 0 ? 0 : 1;
}
