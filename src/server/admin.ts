/**
 * The admin listener (loopback by default): liveness and readiness for probes, Prometheus
 * metrics (`GET /metrics`), and ban administration (`GET /bans` lists the active bans, `DELETE /bans/{key}` lifts one), both
 * written to the audit log with the operator's address.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AuditLog } from '../audit/audit-log.ts';
import { adminEvent } from '../audit/event.ts';
import { parseBanKey } from '../limits/client-key.ts';
import type { OperationalLog } from '../log/operational.ts';
import type { BanRecord } from '../store/ban-store.ts';
import { listenOrExplain } from './listen.ts';

export interface AdminState {
  /** Listening, not draining, and the shared store reachable. */
  ready(): boolean;
  /** The Prometheus text exposition for `GET /metrics` (the guard's); without it /metrics is 404. */
  metrics?(): Promise<{ contentType: string; body: string }>;
  /** Ban administration; without it /bans is 404. */
  readonly bans?: {
    list(): Promise<BanRecord[]>;
    lift(key: string): Promise<BanRecord | undefined>;
  };
  readonly audit?: AuditLog;
}

function publicBan(r: BanRecord) {
  return { key: r.key, since: new Date(r.since).toISOString(), until: new Date(r.until).toISOString(), failures: r.failures, reason: r.reason };
}

export async function startAdminServer(host: string, port: number, state: AdminState, log: OperationalLog): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0] ?? '';
    const send = (status: number, contentType: string, text: string): number => {
      res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
      res.end(req.method === 'HEAD' ? undefined : text);
      return Buffer.byteLength(text);
    };
    const reply = (status: number, body: object): number => send(status, 'application/json', JSON.stringify(body));
    if (state.bans && (path === '/bans' || path.startsWith('/bans/'))) {
      void handleBans(req, path, reply, state.bans, state.audit);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, { error: 'method_not_allowed' });
    if (path === '/healthz') return reply(200, { status: 'ok' });
    if (path === '/readyz') return state.ready() ? reply(200, { status: 'ready' }) : reply(503, { status: 'not_ready' });
    if (path === '/metrics' && state.metrics) {
      state.metrics().then(
        ({ contentType, body }) => send(200, contentType, body),
        (err: unknown) => {
          log.error({ err }, 'collecting metrics failed');
          reply(500, { error: 'internal_error' });
        },
      );
      return;
    }
    return reply(404, { error: 'not_found' });
  });
  await listenOrExplain(server, host, port, 'admin');
  return server;
}

async function handleBans(
  req: IncomingMessage,
  path: string,
  reply: (status: number, body: object) => number,
  bans: NonNullable<AdminState['bans']>,
  audit: AuditLog | undefined,
): Promise<void> {
  const requestId = randomUUID();
  const write = (reason: 'LIMIT_BANS_LISTED' | 'LIMIT_BAN_LIFTED', status: number, bytes: number, ban: BanRecord | undefined, detail?: string) => {
    audit?.write(adminEvent(reason, {
      ip: req.socket.remoteAddress ?? 'unknown', port: req.socket.remotePort ?? 0, method: req.method ?? '', path,
      status, responseBytes: bytes, requestId,
    }, ban, detail));
  };

  if (path === '/bans') {
    if (req.method !== 'GET') return void reply(405, { error: 'method_not_allowed' });
    try {
      const list = await bans.list();
      write('LIMIT_BANS_LISTED', 200, reply(200, { bans: list.map(publicBan), request_id: requestId }), undefined, `${list.length} active`);
    } catch (err) {
      write('LIMIT_BANS_LISTED', 503, reply(503, { error: 'service_unavailable', request_id: requestId }), undefined, (err as Error)?.message);
    }
    return;
  }

  if (req.method !== 'DELETE') return void reply(405, { error: 'method_not_allowed' });
  let key: string | undefined;
  try {
    key = parseBanKey(decodeURIComponent(path.slice('/bans/'.length)));
  } catch {
    key = undefined;
  }
  if (key === undefined) {
    write('LIMIT_BAN_LIFTED', 400, reply(400, { error: 'bad_request', request_id: requestId }), undefined, 'not a ban key; write pop:<id> or addr:<address>');
    return;
  }
  try {
    const lifted = await bans.lift(key);
    if (lifted) write('LIMIT_BAN_LIFTED', 200, reply(200, { lifted: publicBan(lifted), request_id: requestId }), lifted);
    else write('LIMIT_BAN_LIFTED', 404, reply(404, { error: 'not_found', request_id: requestId }), undefined, `${key} is not banned`);
  } catch (err) {
    write('LIMIT_BAN_LIFTED', 503, reply(503, { error: 'service_unavailable', request_id: requestId }), undefined, (err as Error)?.message);
  }
}
