/**
 * The admin listener (loopback by default): liveness and readiness for probes, Prometheus
 * metrics (`GET /metrics`), all three open to whoever reaches the port; and ban administration
 * (`GET /bans` lists the active bans, `DELETE /bans/{key}` lifts one), only for the callers
 * service/admin-access.ts admits: loopback, or the admin token when `admin.token_file` is set.
 *
 * Every ban-administration request is audited with its caller (address, and how it was let in:
 * `loopback` or `admin_token` with the token's fingerprint), refusals included. The order of
 * checks, so that no query trick changes who is asked or what is logged:
 *  1. a credential-like query (`?access_token=...`): AUTH_TOKEN_IN_QUERY, before anything reads it;
 *  2. the caller (ADMIN_* codes), before the method, the rest of the query or the key are looked at;
 *  3. any other query: ROUTE_QUERY_NOT_ALLOWED (these endpoints take none);
 *  4. the method: GET for /bans, DELETE for /bans/{key}, else ROUTE_METHOD_NOT_ALLOWED with Allow;
 *  5. the key, then the store.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AuditLog } from '../audit/audit-log.ts';
import { adminEvent, type AdminCallerFacts, type AdminReason } from '../audit/control-events.ts';
import { credentialInQuery } from '../auth/url-token.ts';
import { parseBanKey } from '../store/client-key.ts';
import type { OperationalLog } from '../log/operational.ts';
import { Rejection } from '../pipeline/reasons.ts';
import { errorBody, sendRejection } from '../pipeline/respond.ts';
import type { BanRecord } from '../store/ban-store.ts';
import { decideAdminCaller, type AdminToken } from './admin-access.ts';
import { plainAddress } from './drain.ts';
import { listenOrExplain } from './listen.ts';

export interface AdminState {
  /** Listening, not draining, and the shared store reachable. */
  ready(): boolean;
  /** The Prometheus text exposition for `GET /metrics` (the guard's); without it /metrics is 404. */
  metrics?(): Promise<{ contentType: string; body: string }>;
  /** Ban administration; without it /bans is 404 (the signer's admin listener: health only). */
  readonly bans?: {
    list(): Promise<BanRecord[]>;
    lift(key: string): Promise<BanRecord | undefined>;
  };
  /** The admin token in force (`admin.token_file`, reloadable); undefined: loopback callers only. */
  readonly adminToken?: () => AdminToken | undefined;
  readonly audit?: AuditLog;
}

function publicBan(r: BanRecord) {
  return { key: r.key, since: new Date(r.since).toISOString(), until: new Date(r.until).toISOString(), failures: r.failures, reason: r.reason };
}

export async function startAdminServer(host: string, port: number, state: AdminState, log: OperationalLog): Promise<Server> {
  const server = createServer((req, res) => {
    const target = req.url ?? '';
    const q = target.indexOf('?');
    const path = q === -1 ? target : target.slice(0, q);
    const send = (status: number, contentType: string, text: string): number => {
      res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
      res.end(req.method === 'HEAD' ? undefined : text);
      return Buffer.byteLength(text);
    };
    const reply = (status: number, body: object): number => send(status, 'application/json', JSON.stringify(body));
    if (state.bans && (path === '/bans' || path.startsWith('/bans/'))) {
      void handleBans(req, res, path, q === -1 ? undefined : target.slice(q + 1), reply, state.bans, state);
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
  res: ServerResponse,
  path: string,
  query: string | undefined,
  reply: (status: number, body: object) => number,
  bans: NonNullable<AdminState['bans']>,
  state: AdminState,
): Promise<void> {
  const { audit } = state;
  const requestId = randomUUID();
  let caller: AdminCallerFacts = {};
  const write = (reason: AdminReason, status: number, bytes: number, ban: BanRecord | undefined, detail?: string) => {
    audit?.write(adminEvent(reason, {
      ip: plainAddress(req.socket.remoteAddress), port: req.socket.remotePort ?? 0, method: req.method ?? '', path,
      status, responseBytes: bytes, requestId, userAgent: req.headers['user-agent'],
    }, ban, detail, caller));
  };
  const refuse = (reason: AdminReason, detail: string, options?: { allow?: readonly string[] }) => {
    const rejection = new Rejection(reason, detail, options);
    sendRejection(res, requestId, rejection, false);
    write(reason, rejection.status, Buffer.byteLength(errorBody(rejection.status, requestId)), undefined, detail);
  };

  // 1. A credential in the URL is treated as leaked, and never read as one.
  const inQuery = query === undefined ? undefined : credentialInQuery(query);
  if (inQuery !== undefined) return refuse('AUTH_TOKEN_IN_QUERY', inQuery);

  // 2. The caller, whatever the method or the rest of the target.
  const decision = decideAdminCaller({ remoteAddress: req.socket.remoteAddress, rawHeaders: req.rawHeaders }, state.adminToken?.());
  if (!decision.allowed) {
    caller = decision.fingerprint !== undefined ? { fingerprint: decision.fingerprint } : {};
    return refuse(decision.reason, decision.detail);
  }
  caller = decision.via === 'admin_token' ? { via: 'admin_token', fingerprint: decision.fingerprint } : { via: 'loopback' };

  // 3, 4. No query; one method per path.
  if (query !== undefined) return refuse('ROUTE_QUERY_NOT_ALLOWED', 'ban administration takes no query');
  const allowed = path === '/bans' ? 'GET' : 'DELETE';
  if (req.method !== allowed) return refuse('ROUTE_METHOD_NOT_ALLOWED', `${path === '/bans' ? '/bans' : '/bans/{key}'} takes ${allowed} only`, { allow: [allowed] });

  if (path === '/bans') {
    try {
      const list = await bans.list();
      write('LIMIT_BANS_LISTED', 200, reply(200, { bans: list.map(publicBan), request_id: requestId }), undefined, `${list.length} active`);
    } catch (err) {
      write('LIMIT_BANS_LISTED', 503, reply(503, { error: 'service_unavailable', request_id: requestId }), undefined, (err as Error)?.message);
    }
    return;
  }

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
