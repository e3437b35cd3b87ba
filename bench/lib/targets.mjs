// The draining upstream and the targets. A target is a small object:
//   { name, about, tls, unavailable(ctx) -> reason|null, start(ctx) -> { child, port, notes } }
// plus optional `wrkEnv` (extra environment for the load generator, e.g. a pre-signed request file).
// Adding a target = adding one object to TARGETS.
import { writeFileSync, mkdirSync, existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createHmac, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import { Webhook } from 'standardwebhooks';
import { startProcess, freePort, waitForPort, waitForHttp200, runBounded } from './proc.mjs';
import { FLOOD_BANNED_ADDRESS, banAddressByFailures } from './flood.mjs';

export const ROUTE = '/api/replication/apply';
export const MAX_BODY_BYTES = 2 * 1024 * 1024;
/** The legitimate POP's certificate CN (the only peer every target admits). */
export const PEER_CN = 'calgary-01';

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;

function nginxCommon(dir) {
  mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  // As root, workers would switch to "nobody"; stay root so they can use the run directory.
  return `${asRoot ? 'user root;\n' : ''}worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
`;
}

function nginxTemps(dir) {
  return ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((t) => `  ${t}_temp_path ${dir}/tmp/${t};`).join('\n');
}

/**
 * The upstream: nginx (1 worker) that reads the whole body, then answers 200 with a small JSON,
 * like the backup applying a batch. The cheapest draining server on this box, the same for every
 * target; its CPU is reported apart and never counted in a target's figure.
 * A plain `return 200` would answer as soon as the headers arrive, before the body (which changes
 * how a streaming proxy behaves with 1 MiB); the mirror with `mirror_request_body on` makes nginx
 * read the full body first, its subrequest answers 204 internally.
 */
export async function startUpstream(ctx) {
  const dir = path.join(ctx.runDir, 'upstream');
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const statusPort = await freePort();
  const conf = `${nginxCommon(dir)}
http {
  access_log off;
${nginxTemps(dir)}
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  client_max_body_size 8m;
  client_body_buffer_size 2m;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      mirror /drain;
      mirror_request_body on;
      root ${dir}/html;
      default_type application/json;
      try_files /ok.json =404;
      error_page 405 =200 @ok;
    }
    location = /drain { internal; return 204; }
    location @ok { default_type application/json; return 200 '{"ok":true}\\n'; }
  }
  # connections accepted by the upstream, read before and after each run: a proxy that does not
  # keep its upstream connections alive shows up here
  server {
    listen 127.0.0.1:${statusPort};
    location = /status { stub_status; }
  }
}
`;
  writeFileSync(path.join(dir, 'nginx.conf'), conf);
  mkdirSync(path.join(dir, 'html'), { recursive: true });
  writeFileSync(path.join(dir, 'html', 'ok.json'), '{"ok":true}\n');
  const child = startProcess('nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')],
    { stdoutFile: path.join(dir, 'stdout.log'), stderrFile: path.join(dir, 'stderr.log') });
  await waitForPort(port, child);
  await waitForPort(statusPort, child);
  return { child, port, statusPort, url: `http://127.0.0.1:${port}` };
}

const nginx = {
  name: 'nginx',
  about: 'nginx 1 worker: ssl_verify_client on, TLSv1.3, certificate CN must be calgary-01 (403), `deny 127.0.0.2`, client_max_body_size 2m (buffered in memory), upstream keepalive 128, JSON access log to a file',
  tls: true,
  unavailable: () => null,
  async start(ctx) {
    const dir = path.join(ctx.runDir, 'nginx');
    mkdirSync(dir, { recursive: true });
    const port = await freePort();
    const { pki } = ctx;
    const conf = `${nginxCommon(dir)}
http {
${nginxTemps(dir)}
  log_format audit escape=json '{"time":"$time_iso8601","client":"$remote_addr","subject":"$ssl_client_s_dn",'
    '"method":"$request_method","path":"$uri","status":$status,"bytes_in":$request_length,"duration_s":$request_time}';
  access_log ${dir}/access.log audit;
  # idle pool larger than the most concurrent requests (64): a smaller one closes and reopens
  # upstream connections at saturation (seen: one new connection per ~3 requests with 32)
  upstream backend { server 127.0.0.1:${ctx.upstream.port}; keepalive 128; keepalive_requests 100000000; }
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  client_max_body_size ${MAX_BODY_BYTES};
  client_body_buffer_size ${MAX_BODY_BYTES};
  server {
    listen 127.0.0.1:${port} ssl backlog=4096;
    ssl_certificate ${pki.serverCert};
    ssl_certificate_key ${pki.serverKey};
    ssl_client_certificate ${pki.caCert};
    ssl_verify_client on;
    ssl_protocols TLSv1.3;
    # the flood scenario's banned address (c); the legitimate client is 127.0.0.1
    deny ${FLOOD_BANNED_ADDRESS};
    location = ${ROUTE} {
      limit_except POST { deny all; }
      # the certificate must name the peer (replguard's mTLS check): the flood's valid
      # certificate of another name (b) is refused here
      if ($ssl_client_s_dn != "CN=${PEER_CN}") { return 403; }
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
    location / { return 404; }
  }
}
`;
    writeFileSync(path.join(dir, 'nginx.conf'), conf);
    const child = startProcess('nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')],
      { stdoutFile: path.join(dir, 'stdout.log'), stderrFile: path.join(dir, 'stderr.log') });
    await waitForPort(port, child);
    return { child, port };
  },
};

const haproxy = {
  name: 'haproxy',
  about: 'haproxy nbthread 1: verify required, ssl-min-ver TLSv1.3, certificate CN must be calgary-01 (403), 127.0.0.2 rejected at accept, 413 on Content-Length > 2 MiB (body streamed), http-reuse always, httplog to a file',
  tls: true,
  unavailable: () => null,
  async start(ctx) {
    const dir = path.join(ctx.runDir, 'haproxy');
    mkdirSync(dir, { recursive: true });
    const port = await freePort();
    const { pki } = ctx;
    const conf = `global
  nbthread 1
  maxconn 4096
  log stdout format raw local0
defaults
  mode http
  log global
  option httplog
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 300s
  timeout server 30s
  timeout http-request 30s
  timeout http-keep-alive 300s
frontend fe
  bind 127.0.0.1:${port} ssl crt ${pki.serverPem} ca-file ${pki.caCert} verify required ssl-min-ver TLSv1.3
  # the flood scenario's banned address (c), cut at accept
  tcp-request connection reject if { src ${FLOOD_BANNED_ADDRESS} }
  # the certificate must name the peer (replguard's mTLS check): the flood's other name (b) gets 403
  http-request deny deny_status 403 unless { ssl_c_s_dn(cn) -m str ${PEER_CN} }
  http-request deny deny_status 413 if { req.hdr_val(content-length) gt ${MAX_BODY_BYTES} }
  http-request deny deny_status 404 unless METH_POST { path ${ROUTE} }
  default_backend be
backend be
  server up 127.0.0.1:${ctx.upstream.port}
`;
    writeFileSync(path.join(dir, 'haproxy.cfg'), conf);
    const check = await runBounded('haproxy', ['-c', '-f', path.join(dir, 'haproxy.cfg')], { timeoutMs: 10000 });
    if (check.code !== 0) throw new Error(`haproxy config check failed: ${check.stdout}${check.stderr}`);
    const child = startProcess('haproxy', ['-db', '-f', path.join(dir, 'haproxy.cfg')],
      { stdoutFile: path.join(dir, 'access.log'), stderrFile: path.join(dir, 'stderr.log') });
    await waitForPort(port, child);
    return { child, port };
  },
};

/** `caddy version`'s first line, or null when caddy is not on the PATH. */
export function caddyVersion() {
  const r = spawnSync('caddy', ['version'], { encoding: 'utf8', timeout: 10000 });
  return r.status === 0 ? r.stdout.trim().split('\n')[0] : null;
}

/**
 * Caddy (Debian's package): the Go reverse proxy many would pick for client-certificate auth.
 * One process with GOMAXPROCS=1, so that it uses one core like nginx's one worker. `route`
 * keeps the handlers in the written order (the Caddyfile sorts bare directives otherwise).
 * With client authentication on, Caddy answers 421 when the Host differs from the TLS server
 * name (strict_sni_host, kept on): the clients send one that agrees (lib/preflight.mjs).
 */
const caddy = {
  name: 'caddy',
  about: 'caddy 1 process, GOMAXPROCS=1 (one core, like nginx\'s 1 worker): client_auth require_and_verify against the bench CA, TLS 1.3 only, certificate subject must be CN=calgary-01 (403), 127.0.0.2 refused (403), 413 on Content-Length > 2 MiB, request_body max_size 2 MiB for the streamed body, reverse_proxy with keep-alive (128 idle per host: with the default, one upstream connection was opened per two requests at 16 client connections), JSON access log to a file',
  tls: true,
  unavailable: () => (caddyVersion() ? null : 'caddy is not on the PATH (Debian: apt-get install caddy)'),
  async start(ctx) {
    const dir = path.join(ctx.runDir, 'caddy');
    mkdirSync(path.join(dir, 'data'), { recursive: true });
    const port = await freePort();
    const { pki } = ctx;
    const conf = `{
	admin off
	auto_https off
	storage file_system ${dir}/data
	servers {
		protocols h1
	}
}
https://:${port} {
	bind 127.0.0.1
	tls ${pki.serverCert} ${pki.serverKey} {
		protocols tls1.3
		client_auth {
			mode require_and_verify
			trusted_ca_cert_file ${pki.caCert}
		}
	}
	log {
		output file ${dir}/access.log
		format json
	}
	route {
		@banned remote_ip ${FLOOD_BANNED_ADDRESS}
		respond @banned 403 {
			close
		}
		@notpeer not vars {http.request.tls.client.subject} CN=${PEER_CN}
		respond @notpeer 403
		# request_body alone only cuts a body once it has grown past the limit (while it is
		# proxied); a declared Content-Length over it is answered at once, like nginx and haproxy
		@toolarge expression int({http.request.header.Content-Length}) > ${MAX_BODY_BYTES}
		respond @toolarge 413 {
			close
		}
		request_body {
			max_size ${MAX_BODY_BYTES}
		}
		@route {
			method POST
			path ${ROUTE}
		}
		handle @route {
			reverse_proxy 127.0.0.1:${ctx.upstream.port} {
				transport http {
					keepalive 300s
					keepalive_idle_conns 128
					keepalive_idle_conns_per_host 128
				}
			}
		}
		handle {
			respond 404
		}
	}
}
`;
    writeFileSync(path.join(dir, 'Caddyfile'), conf);
    // Caddy keeps its state under XDG folders: point them into the run directory.
    const env = { PATH: process.env.PATH, HOME: dir, XDG_DATA_HOME: path.join(dir, 'data'), XDG_CONFIG_HOME: path.join(dir, 'config'), GOMAXPROCS: '1' };
    const check = await runBounded('caddy', ['validate', '--config', path.join(dir, 'Caddyfile'), '--adapter', 'caddyfile'], { env, timeoutMs: 20000 });
    if (check.code !== 0) throw new Error(`caddy validate failed: ${(check.stdout + check.stderr).trim().slice(-400)}`);
    const child = startProcess('caddy', ['run', '--config', path.join(dir, 'Caddyfile'), '--adapter', 'caddyfile'],
      { env, stdoutFile: path.join(dir, 'stdout.log'), stderrFile: path.join(dir, 'stderr.log') });
    await waitForPort(port, child);
    return { child, port };
  },
};

function nodeServer(name, script, about, { extra = () => ({}), unavailable = () => null } = {}) {
  return {
    name,
    about,
    tls: true,
    unavailable,
    async start(ctx) {
      const dir = path.join(ctx.runDir, name);
      mkdirSync(dir, { recursive: true });
      const port = await freePort();
      const cfg = {
        port, path: ROUTE, maxBodyBytes: MAX_BODY_BYTES,
        key: ctx.pki.serverKey, cert: ctx.pki.serverCert, ca: ctx.pki.caCert,
        upstream: ctx.upstream.url, ...extra(ctx),
      };
      writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg, null, 2));
      const child = startProcess(process.execPath, [...ctx.nodeArgs, path.join(ctx.benchDir, 'servers', script), path.join(dir, 'config.json')],
        { stdoutFile: path.join(dir, 'stdout.log'), stderrFile: path.join(dir, 'stderr.log') });
      await waitForPort(port, child);
      return { child, port };
    },
  };
}

const nodeFloor = nodeServer('node-floor', 'node-floor.mjs',
  'floor: Node https server, client certificate required, TLSv1.3, answers 200 itself (no forwarding)');

const undiciMin = nodeServer('undici-min', 'undici-min.mjs',
  'floor: the node-floor server forwarding with undici Pool.dispatch as replguard does, body buffered, no other check');

const httpProxyMin = nodeServer('http-proxy-min', 'http-proxy-min.mjs',
  'reference: minimal Node mTLS proxy on http-proxy (installed at run time into bench/.run/), keep-alive agent',
  {
    extra: (ctx) => ({ httpProxyDir: ctx.httpProxyDir }),
    unavailable: (ctx) => (ctx.httpProxyDir ? null : `http-proxy could not be installed: ${ctx.httpProxyError}`),
  });

const direct = {
  name: 'direct',
  about: 'floor: plain HTTP straight to the upstream (wrk without TLS); the figure is the upstream\'s own CPU',
  tls: false,
  unavailable: () => null,
  async start(ctx) {
    return { child: ctx.upstream.child, port: ctx.upstream.port, shared: true };
  },
};

/**
 * Failures that ban an address or POP in the replguard targets, and the window they count in.
 * The flood scenario needs one address banned (replguard has no deny list: bans come from
 * failures, see lib/flood.mjs banAddressByFailures) while each flood kind, at most
 * MAX_FLOOD_RATE attempts a second from its own address, stays under the threshold so that it
 * goes on meeting its own check; and no honest run comes near it (a preflight fails 3 times).
 */
export const BAN_AFTER_FAILURES = 1000;
export const FAILURE_WINDOW_S = 10;
export const MAX_FLOOD_RATE = Math.floor((0.8 * BAN_AFTER_FAILURES) / FAILURE_WINDOW_S);

function replguardYaml(ctx, port, adminPort, { auth = '{ methods: [mtls] }', peer = '', peers = '', extra = '' } = {}) {
  const { pki } = ctx;
  return `pop_id: zurich-01
role: backup
listen: { host: 127.0.0.1, port: ${port} }
tls: { cert_file: ${pki.serverCert}, key_file: ${pki.serverKey}, client_ca_file: ${pki.caCert}, min_version: TLSv1.3 }
upstream: { url: ${ctx.upstream.url}, timeout: 30s }
routes: [ { method: POST, path: ${ROUTE} } ]
auth: ${auth}
peers: [ { id: calgary-01, cert: { cn: calgary-01 }${peer} }${peers} ]
admin: { host: 127.0.0.1, port: ${adminPort} }
# nginx's job has no rate limit: the limits stay on, set far above any offered load here. The ban
# threshold is out of an honest run's reach, and a ban short, so that a failed run cannot ban the
# client for long; the flood scenario bans ${FLOOD_BANNED_ADDRESS} on purpose before each run.
# wrk opens all its connections (64 at sat-1k) from one address at once, before any of them has
# authenticated: the per-address cap of unauthenticated connections (default 32) is raised above
# that, as nginx has none; the flood's clients hold at most --flood-concurrency (16) each.
limits: { max_body_bytes: 2MiB, rate_per_minute: 100000000, address_rate_per_minute: 100000000, ban_after_failures: ${BAN_AFTER_FAILURES}, failure_window: ${FAILURE_WINDOW_S}s, ban_duration: 60s, max_unauthenticated_per_address: 128 }
${extra}`;
}

function replguardUnavailable(ctx) {
  if (!existsSync(path.join(ctx.repoRoot, 'src', 'main.ts'))) return 'src/main.ts is not on this branch yet (merge main)';
  if (!existsSync(path.join(ctx.repoRoot, 'dist', 'main.js'))) return 'dist/main.js missing: run `npm ci && npm run build` first';
  return null;
}

const replguard = {
  name: 'replguard',
  about: 'replguard, mTLS only (nginx\'s job): `node dist/main.js serve -c <generated yaml>`, audit (stdout) to a file',
  tls: true,
  unavailable: replguardUnavailable,
  async start(ctx) {
    const dir = path.join(ctx.runDir, 'replguard');
    mkdirSync(dir, { recursive: true });
    const port = await freePort();
    const adminPort = await freePort();
    writeFileSync(path.join(dir, 'replguard.yaml'), replguardYaml(ctx, port, adminPort));
    const args = [...ctx.nodeArgs, path.join(ctx.repoRoot, 'dist', 'main.js'), 'serve', '-c', path.join(dir, 'replguard.yaml')];
    const child = startProcess(process.execPath, args,
      { cwd: ctx.repoRoot, stdoutFile: path.join(dir, 'audit.ndjson'), stderrFile: path.join(dir, 'stderr.log') });
    await waitForHttp200(adminPort, '/readyz', child);
    await waitForPort(port, child);
    return { child, port, adminPort, auditFile: path.join(dir, 'audit.ndjson') };
  },
  floodPrepare: banForFlood,
};

/** Before a flood run: ban the flood's banned address (a ban lasts 60 s, a flood run less). */
function banForFlood(_ctx, started) {
  return banAddressByFailures({ port: started.port, adminPort: started.adminPort, failures: BAN_AFTER_FAILURES + 50 });
}

/** The Deno binary the `deno` dev dependency installs (no download at run time). */
function denoBinary(ctx) {
  return path.join(ctx.repoRoot, 'node_modules', '.bin', 'deno');
}

/**
 * The same guard and config as `replguard`, run by Deno 2 from `src/` (the product's other
 * runtime): Deno's figures beside Node's.
 */
const replguardDeno = {
  name: 'replguard-deno',
  about: 'replguard, mTLS only, under Deno 2: `deno run --allow-all src/main.ts serve -c <generated yaml>` (the `replguard` config), audit (stdout) to a file',
  tls: true,
  unavailable(ctx) {
    if (!existsSync(path.join(ctx.repoRoot, 'src', 'main.ts'))) return 'src/main.ts missing';
    if (!existsSync(denoBinary(ctx))) return 'node_modules/.bin/deno missing: run `npm ci` first';
    return null;
  },
  async start(ctx) {
    const dir = path.join(ctx.runDir, 'replguard-deno');
    mkdirSync(dir, { recursive: true });
    const port = await freePort();
    const adminPort = await freePort();
    writeFileSync(path.join(dir, 'replguard.yaml'), replguardYaml(ctx, port, adminPort));
    const args = ['run', '--quiet', '--allow-all', '--no-prompt', path.join(ctx.repoRoot, 'src', 'main.ts'), 'serve', '-c', path.join(dir, 'replguard.yaml')];
    const child = startProcess(denoBinary(ctx), args,
      { cwd: ctx.repoRoot, stdoutFile: path.join(dir, 'audit.ndjson'), stderrFile: path.join(dir, 'stderr.log') });
    await waitForHttp200(adminPort, '/readyz', child);
    await waitForPort(port, child);
    return { child, port, adminPort, auditFile: path.join(dir, 'audit.ndjson') };
  },
  floodPrepare: banForFlood,
};

/**
 * The full pipeline: mTLS, a JWT (ES256) and a Standard Webhooks v1 signature (HMAC-SHA256)
 * with the replay window and nonce store, rate limits and the audit stream. The generator does
 * no crypto: before each wrk process the harness writes a file of pre-signed requests (a fresh
 * webhook-id each, signed by the standardwebhooks library over the shared body), and
 * kit/presigned.lua hands each out once. All requests carry the same JWT, as a POP reusing its
 * token for a while would: after the first request the guard's verified-token cache answers.
 */
const replguardFull = {
  name: 'replguard-full',
  about: 'replguard, full pipeline: mTLS + JWT (ES256, one token, so the verified-token cache answers) + Standard Webhooks v1 signature + replay window and nonce store + rate limits + audit; pre-signed requests, each used once',
  tls: true,
  signedBody: true,
  unavailable: replguardUnavailable,
  async start(ctx) {
    const dir = path.join(ctx.runDir, 'replguard-full');
    mkdirSync(dir, { recursive: true });
    // calgary-01: the legitimate POP; toronto-02: a second peer, the flood's (b) identity, whose
    // real token lends its header and claims to the forged ones (a random signature each)
    const pops = {};
    for (const pop of ['calgary-01', 'toronto-02']) {
      const jwtKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const jwtKey = path.join(dir, `jwt-${pop}.key`);
      const jwtPub = path.join(dir, `jwt-${pop}.pub`);
      writeFileSync(jwtKey, jwtKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      writeFileSync(jwtPub, jwtKeys.publicKey.export({ type: 'spki', format: 'pem' }));
      const key = randomBytes(32);
      const secret = `whsec_${key.toString('base64')}`;
      const secretFile = path.join(dir, `signing-${pop}.secret`);
      writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
      const minted = await runBounded(process.execPath, [path.join(ctx.repoRoot, 'dist', 'main.js'), 'make-jwt', '-k', jwtKey,
        '--pop', pop, '--audience', 'zurich-01', '--route', `POST:${ROUTE}`, '--ttl', '1h', '--alg', 'ES256'],
      { cwd: ctx.repoRoot, timeoutMs: 20000 });
      const jwt = minted.stdout.trim();
      if (minted.code !== 0 || !/^[\w-]+\.[\w-]+\.[\w-]+$/.test(jwt)) throw new Error(`make-jwt failed: ${minted.stderr.trim()}`);
      pops[pop] = { jwtPub, key, secret, secretFile, jwt };
    }
    const { key, secret, jwt } = pops['calgary-01'];

    const port = await freePort();
    const adminPort = await freePort();
    writeFileSync(path.join(dir, 'replguard.yaml'), replguardYaml(ctx, port, adminPort, {
      auth: `{ methods: [mtls, jwt, signature], jwt: { public_keys: [ { path: ${pops['calgary-01'].jwtPub}, alg: ES256, pop: calgary-01 }, { path: ${pops['toronto-02'].jwtPub}, alg: ES256, pop: toronto-02 } ] } }`,
      peer: `, signing_keys: [${pops['calgary-01'].secretFile}]`,
      peers: `, { id: toronto-02, cert: { cn: toronto-02 }, signing_keys: [${pops['toronto-02'].secretFile}] }`,
      // Every request carries a fresh nonce: the store must hold a whole run's (max_age x 2). The
      // default max_age leaves room for signing a run's files (1 MiB bodies take seconds).
      extra: 'replay: { max_age: 300s, max_nonces: 3000000 }\n',
    }));
    const args = [...ctx.nodeArgs, path.join(ctx.repoRoot, 'dist', 'main.js'), 'serve', '-c', path.join(dir, 'replguard.yaml')];
    const child = startProcess(process.execPath, args,
      { cwd: ctx.repoRoot, stdoutFile: path.join(dir, 'audit.ndjson'), stderrFile: path.join(dir, 'stderr.log') });
    await waitForHttp200(adminPort, '/readyz', child);
    await waitForPort(port, child);
    // Requests are signed with node:crypto (the Standard Webhooks v1 scheme: base64 HMAC-SHA256 of
    // "id.timestamp.body"), fast enough for files of 1 MiB bodies; preflight signs with the
    // standardwebhooks library, so a disagreement between the two fails preflight.
    const sign = (id, ts, body) => `v1,${createHmac('sha256', key).update(`${id}.${ts}.`).update(body).digest('base64')}`;
    return { child, port, adminPort, auditFile: path.join(dir, 'audit.ndjson'), full: { jwt, webhook: new Webhook(secret), sign, dir },
      floodJwt: pops['toronto-02'].jwt };
  },
  floodPrepare: banForFlood,
  /** Preflight: the JWT and a freshly signed triple for this body. */
  headers(_ctx, started, body) {
    const id = `msg_${randomUUID()}`;
    const now = new Date();
    return {
      authorization: `Bearer ${started.full.jwt}`,
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
      'webhook-signature': started.full.webhook.sign(id, now, body.toString('utf8')),
    };
  },
  wrkScript: (ctx) => path.join(ctx.kitDir, 'presigned.lua'),
  /** A fresh file of pre-signed requests per wrk process, enough for its offered load. */
  wrkEnv(ctx, scenario, { started, seconds }) {
    const body = readFileSync(ctx.bodies[`${scenario.body}-signed`]);
    // Upper bounds of what the guard can take (nginx itself does ~550 req/s with 1 MiB here).
    const perSecond = scenario.delayMs ? (scenario.connections * 1000) / scenario.delayMs : (scenario.body === '1m' ? 700 : 20000);
    const count = Math.ceil(perSecond * 1.2 * (seconds + 1));
    const ts = String(Math.floor(Date.now() / 1000));
    const lines = new Array(count);
    for (let i = 0; i < count; i++) {
      const id = `msg_${randomUUID()}`;
      lines[i] = `${id} ${ts} ${started.full.sign(id, ts, body)}`;
    }
    const file = path.join(started.full.dir, `requests-${scenario.name}-${process.hrtime.bigint()}.txt`);
    writeFileSync(file, `${lines.join('\n')}\n`);
    return { REQUESTS: file, AUTHORIZATION: `Bearer ${started.full.jwt}` };
  },
};

export const TARGETS = [nginx, haproxy, caddy, nodeFloor, direct, undiciMin, httpProxyMin, replguard, replguardDeno, replguardFull];
export const REFERENCE = 'nginx';
/** The runtime's own forwarding floor: issue 22's goals are ratios to it, in the same repetition. */
export const FLOOR = 'undici-min';
