// Shipping the audit trail, proved end to end with a real shipper: rsyslog (Debian's rsyslog and
// rsyslog-gnutls packages, installed by .ci/run; this test installs nothing and fails without
// them) runs the shipped config, deploy/shippers/rsyslog/replguard-audit.conf, with only the
// SIEM's address, port, name and CA and the audit file's path replaced: imfile tails audit.file
// and omfwd forwards each line over TLS to a collector in this test, on loopback. The real guard
// serves a steady stream of requests (forwarded, refused by route, refused for an unknown peer)
// while the file is renamed and the guard signalled with SIGUSR2, logrotate's way
// (docs/audit.md#rotation-with-logrotate), several times. Every event the guard wrote (its stdout
// carries the same stream, in order) must reach the collector exactly once, in the same order,
// as the same JSON.
//
// rsyslog runs as a child process with a generated config and no system inputs (no /dev/log, no
// network listener); as root, it drops to nobody:nogroup and reads the audit file the way a
// shipper in the file's group does: the audit folder is setgid nogroup, so the 0640 files the
// guard creates there, the new one after each rotation too, belong to that group.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { createServer } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { call } from '../helpers/client.ts';
import { baseConfig, ROOT, startGuard } from '../helpers/guard.ts';
import { makePki, type CertFiles } from '../helpers/pki.ts';
import { startBackup } from '../helpers/upstream.ts';
import { until } from '../helpers/wait.ts';

const REQUESTS = 300;
const CONCURRENCY = 4;
const ROTATIONS = 5;
const NOBODY = 65534;
const NOGROUP = 65534;

function findRsyslogd(): string | undefined {
  for (const candidate of ['/usr/sbin/rsyslogd', '/sbin/rsyslogd']) if (existsSync(candidate)) return candidate;
  const which = spawnSync('sh', ['-c', 'command -v rsyslogd'], { encoding: 'utf8' });
  return which.status === 0 ? which.stdout.trim() || undefined : undefined;
}

/** rsyslog's GnuTLS network stream driver (Debian's rsyslog-gnutls), wherever the library folder is. */
function hasGtlsDriver(): boolean {
  const libs = ['/usr/lib', '/usr/lib64', ...(existsSync('/usr/lib') ? readdirSync('/usr/lib').map((d) => join('/usr/lib', d)) : [])];
  return libs.some((dir) => existsSync(join(dir, 'rsyslog', 'lmnsd_gtls.so')));
}

/** A TLS collector on loopback, the SIEM's stand-in: every newline-terminated line received, in order. */
async function startCollector(identity: CertFiles) {
  const lines: string[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = createServer({ cert: readFileSync(identity.cert), key: readFileSync(identity.key) }, (socket) => {
    connections += 1;
    sockets.add(socket);
    let pending = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      pending += chunk;
      const parts = pending.split('\n');
      pending = parts.pop()!;
      lines.push(...parts);
    });
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    lines: () => lines,
    connections: () => connections,
    async stop() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

const SHIPPED = join(ROOT, 'deploy', 'shippers', 'rsyslog', 'replguard-audit.conf');

/**
 * The shipped config with this test's SIEM (the collector, whose certificate names localhost)
 * and audit file; rsyslog's workDirectory (the host's rsyslog.conf sets it) comes first.
 */
function rsyslogConfig(o: { work: string; file: string; port: number; caFile: string }): string {
  let text = readFileSync(SHIPPED, 'utf8');
  const replace = (from: string, to: string) => {
    const count = text.split(from).length - 1;
    if (count !== 1) throw new Error(`${SHIPPED}: expected ${from} once, found it ${count} times`);
    text = text.replace(from, to);
  };
  replace('target="siem.example.internal"', 'target="127.0.0.1"');
  replace('port="6514"', `port="${o.port}"`);
  replace('StreamDriverPermittedPeers="siem.example.internal"', 'StreamDriverPermittedPeers="localhost"');
  replace('StreamDriver.CAFile="/etc/ssl/certs/siem-ca.pem"', `StreamDriver.CAFile="${o.caFile}"`);
  replace('file="/var/log/replguard/audit.ndjson"', `file="${o.file}"`);
  return `global(workDirectory="${o.work}")\n${text}`;
}

t.test('rsyslog ships every audit event exactly once, in order, across SIGUSR2 rotations', { timeout: 55_000 }, async (t) => {
  const rsyslogd = findRsyslogd();
  if (!rsyslogd) {
    t.fail('rsyslogd is not installed: apt-get install rsyslog rsyslog-gnutls (.ci/run installs them)');
    return;
  }
  if (!hasGtlsDriver()) {
    t.fail("rsyslog's TLS driver lmnsd_gtls is not installed: apt-get install rsyslog-gnutls (.ci/run installs it)");
    return;
  }
  const started = Date.now();
  const asRoot = process.getuid?.() === 0;

  const root = mkdtempSync(join(tmpdir(), 'replguard-shipper-'));
  chmodSync(root, 0o755);
  const logs = join(root, 'logs');
  mkdirSync(logs);
  const work = join(root, 'rsyslog');
  mkdirSync(work, { mode: 0o700 });
  if (asRoot) {
    chownSync(logs, 0, NOGROUP);
    chmodSync(logs, 0o2750); // setgid: files created here belong to nogroup
    chownSync(work, NOBODY, NOGROUP);
  }
  const file = join(logs, 'audit.ndjson');

  const pki = makePki([]);
  const calgary = pki.client('calgary-01');
  const stranger = pki.client('tokyo-05'); // valid chain, no configured peer: AUTH_PEER_UNKNOWN
  const backup = await startBackup();
  const guard = await startGuard(baseConfig(pki, backup.url, { audit: { stdout: true, file } }));
  const collector = await startCollector(pki.server);
  // The CA rsyslog verifies the collector with, where nobody can read it.
  const caFile = join(root, 'siem-ca.pem');
  writeFileSync(caFile, readFileSync(pki.caFile), { mode: 0o644 });
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });

  const configFile = join(root, 'rsyslog.conf');
  writeFileSync(configFile, rsyslogConfig({ work, file, port: collector.port, caFile }));
  const check = spawnSync(rsyslogd, ['-N1', '-f', configFile], { encoding: 'utf8' });
  t.equal(check.status, 0, `rsyslogd -N1 accepts the config${check.status === 0 ? '' : `:\n${check.stdout}${check.stderr}`}`);
  let shipperOutput = '';
  const shipper: ChildProcess = spawn(rsyslogd, ['-n', '-f', configFile, '-i', join(work, 'rsyslogd.pid')], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(asRoot ? { uid: NOBODY, gid: NOGROUP } : {}),
  });
  shipper.stdout!.on('data', (d) => (shipperOutput += d));
  shipper.stderr!.on('data', (d) => (shipperOutput += d));
  t.teardown(async () => {
    agent.destroy();
    if (shipper.exitCode === null) {
      shipper.kill('SIGTERM');
      await once(shipper, 'exit');
    }
    await collector.stop();
    await guard.stop();
    await backup.stop();
  });
  if (asRoot) {
    await until(() => existsSync(`/proc/${shipper.pid}/status`), 'rsyslogd to start');
    const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${shipper.pid}/status`, 'utf8'))?.[1];
    t.equal(uid, String(NOBODY), 'rsyslogd runs as nobody');
    t.equal(statSync(file).gid, NOGROUP, 'the audit file belongs to the shipper\'s group');
    t.equal(statSync(file).mode & 0o777, 0o640, 'and is 0640: the group reads, others nothing');
  }

  // The stream: workers send requests back to back; a rotator renames the file and signals the
  // guard after every REQUESTS / (ROTATIONS + 1) answers, waiting for each reopen before the next.
  const answered: string[] = [];
  let sent = 0;
  const worker = async () => {
    while (sent < REQUESTS) {
      const n = sent++;
      const options = n % 10 === 9 ? { cert: calgary, path: '/api/replication/elsewhere' } : n % 15 === 7 ? { cert: stranger } : { cert: calgary };
      const reply = await call(guard.port, pki.caFile, { ...options, agent });
      answered.push(String(reply.headers['x-replguard-request-id']));
    }
  };
  const reopened = () => guard.operational().filter((r) => r.message === 'audit file reopened').length;
  const rotated: string[] = [];
  const rotator = async () => {
    for (let k = 1; k <= ROTATIONS; k++) {
      await until(() => answered.length >= Math.floor((k * REQUESTS) / (ROTATIONS + 1)), `answer ${k}`, 20_000);
      const target = `${file}.${k}`;
      renameSync(file, target);
      rotated.push(target);
      guard.child.kill('SIGUSR2');
      await until(() => reopened() >= k, `reopen ${k}`, 10_000);
    }
  };
  await Promise.all([...Array.from({ length: CONCURRENCY }, worker), rotator()]);
  t.equal(answered.length, REQUESTS, `${REQUESTS} requests answered`);
  t.equal(reopened(), ROTATIONS, `${ROTATIONS} rotations, each reopened`);

  const events = await guard.waitForAudit(REQUESTS, 10_000);
  t.equal(events.length, REQUESTS, 'one audit event per request on stdout');
  t.same(new Set(events.map((e) => e.replguard.request_id)), new Set(answered), 'the events are the answered requests');
  const reasons = new Set(events.map((e) => e.event.reason));
  t.same([...reasons].sort(), ['AUTH_PEER_UNKNOWN', 'FORWARDED', 'ROUTE_NOT_FOUND'], 'forwarded, refused and alert events');

  // The file trail itself: the rotated files and the current one, in rotation order, hold the
  // stream whole (each with some events: the rotations happened under traffic).
  const inFiles = [...rotated, file].map((f) => readFileSync(f, 'utf8').split('\n').filter(Boolean));
  for (const [i, lines] of inFiles.entries()) t.ok(lines.length > 0, `file ${i + 1} of ${inFiles.length} holds ${lines.length} events`);
  t.same(inFiles.flat().map((l) => JSON.parse(l)), events, 'the files together hold the stream, in order');

  // What the collector received: every event once, in order, the same JSON.
  await until(() => collector.lines().length >= events.length, `${events.length} lines at the collector (rsyslog said: ${shipperOutput.trim() || 'nothing'})`, 20_000);
  await sleep(1500); // time for a late duplicate to show
  const received = collector.lines();
  const parsed = received.map((line, i) => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      t.fail(`line ${i + 1} at the collector is not JSON: ${line.slice(0, 200)}`);
      return undefined;
    }
  });
  t.equal(received.length, events.length, 'as many lines as events: none lost, none twice');
  const ids = parsed.map((e) => (e as { replguard?: { request_id?: string } } | undefined)?.replguard?.request_id);
  t.equal(new Set(ids).size, ids.length, 'no request id twice');
  t.same(parsed, events, 'the same events, in the same order, as the same JSON');
  t.equal(received.map((l) => `${l}\n`).join(''), guard.output().stdout, 'byte for byte the lines the guard wrote');
  t.ok(collector.connections() >= 1, 'rsyslog connected to the collector over TLS, verifying its certificate');
  t.equal(shipper.exitCode, null, 'rsyslog is still running');
  t.ok(Date.now() - started < 50_000, `done in ${Date.now() - started} ms`);
});
