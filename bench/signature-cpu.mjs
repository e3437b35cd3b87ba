#!/usr/bin/env node
// What one refused signed request costs the guard, and how long it holds the event loop: the
// attack of the CPU-amplification finding (eight well-formed junk `v1a` entries over a large
// body, many POPs with several keys configured), run through the real signature stage of a
// build, in process. Also a legitimate small request, for the cost of the common case.
//
//   node bench/signature-cpu.mjs                          # against dist/ (npm run build first)
//   node bench/signature-cpu.mjs --dist /tmp/before/dist  # against another build (before/after)
//   node_modules/.bin/deno run -A bench/signature-cpu.mjs --src            # Deno, from src/
//   node_modules/.bin/deno run -A bench/signature-cpu.mjs --dist /tmp/before/src   # Deno, another checkout
//   options: --pops 11 --keys 2 --entries 8 --body-mib 10 --reps 3 --small 200 --json
//            --on-loop: keep every check on the event loop (a build with the fix: only the POP's
//            own keys, but no WebCrypto), to tell the two halves of the fix apart
//            --threshold: instead, one check (HMAC, Ed25519) at sizes from 4 KiB to 1 MiB on both
//            paths (at once on the loop; the large-content path: HMAC in slices, Ed25519 off the
//            main thread): wall and main-thread time per check, the figures OFF_THREAD_MIN_BYTES is chosen by
//
// Measures per attack request: CPU of the whole process (process.cpuUsage: every thread, so
// work moved to the threadpool still counts), CPU of the main thread alone (the event loop's
// busy time, from /proc/self/task/<pid>/schedstat, Linux), wall time, and the event loop's
// longest block as another connection sees it: a 1 ms timer's longest gap between ticks, and
// (Node) the maximum of perf_hooks.monitorEventLoopDelay. On a loaded machine the gaps also hold
// the time the main thread waited for a core; its own CPU time does not. Prints a table; --json
// prints the raw figures. Nothing is written to disk except temporary key files.
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import process from 'node:process';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');

function parseArgs(argv) {
  const o = { dist: join(ROOT, 'dist'), src: false, onLoop: false, threshold: false, pops: 11, keys: 2, entries: 8, bodyMib: 10, reps: 3, small: 200, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--dist') o.dist = resolve(next());
    else if (a === '--src') o.src = true;
    else if (a === '--on-loop') o.onLoop = true;
    else if (a === '--threshold') o.threshold = true;
    else if (a === '--pops') o.pops = Number(next());
    else if (a === '--keys') o.keys = Number(next());
    else if (a === '--entries') o.entries = Number(next());
    else if (a === '--body-mib') o.bodyMib = Number(next());
    else if (a === '--reps') o.reps = Number(next());
    else if (a === '--small') o.small = Number(next());
    else if (a === '--json') o.json = true;
    else throw new Error(`unknown option ${a}`);
  }
  for (const k of ['pops', 'keys', 'entries', 'reps']) if (!Number.isInteger(o[k]) || o[k] < 1) throw new Error(`--${k} must be a positive integer`);
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const base = opts.src ? join(ROOT, 'src') : opts.dist;
// A dist/ holds .js (Node or Deno); a src/ holds .ts (Deno only).
const ext = existsSync(join(base, 'replay', 'signature-stage.ts')) ? '.ts' : '.js';
const load = (path) => import(pathToFileURL(join(base, `${path}${ext}`)).href);
const [{ createSignatureStage }, { MemoryNonceStore }, { createOperationalLog }, { configSchema }, signature] = await Promise.all([
  load('replay/signature-stage'), load('store/memory'), load('log/operational'), load('config/schema'), load('replay/signature'),
]);

// Keys: `pops` POPs with `keys` Ed25519 keys each; the attacker is the first POP.
const dir = mkdtempSync(join(tmpdir(), 'replguard-bench-sig-'));
let n = 0;
const peers = Array.from({ length: opts.pops }, (_, p) => {
  const id = p === 0 ? 'calgary-01' : `pop-${String(p).padStart(3, '0')}`;
  const signing_keys = Array.from({ length: opts.keys }, () => {
    const { publicKey } = generateKeyPairSync('ed25519');
    const file = join(dir, `k${n++}.pub`);
    writeFileSync(file, publicKey.export({ format: 'pem', type: 'spki' }));
    return file;
  });
  return { id, cert: { cn: id }, cert_sha256: [], token_files: [], signing_keys };
});
const { privateKey: attackerKey } = generateKeyPairSync('ed25519');
const ownKey = generateKeyPairSync('ed25519');
const ownFile = join(dir, 'own.pub');
writeFileSync(ownFile, ownKey.publicKey.export({ format: 'pem', type: 'spki' }));
// The legitimate request below is signed with a key of calgary-01 (its last key slot).
peers[0].signing_keys[opts.keys - 1] = ownFile;

const now = () => Date.now();
const auth = configSchema.shape.auth.parse({ methods: ['mtls', 'signature'], reload_interval: 0 });
const replay = { max_age: 300_000, max_nonces: 1_000_000, max_signature_entries: 8 };
const stage = createSignatureStage({ peers, replay, auth }, {
  now, nonceStore: new MemoryNonceStore({ maxNonces: 1_000_000, now }), log: createOperationalLog('error'),
  ...(opts.onLoop ? { offThreadMinBytes: Infinity } : {}),
});

let counter = 0;
function context(headers, body) {
  const all = { 'content-type': 'application/json', ...headers };
  const req = { method: 'POST', headers: all, rawHeaders: Object.entries(all).flat() };
  return { id: 'bench', req, pop: 'calgary-01', credentials: ['mtls'], body, entries: undefined, webhookId: undefined, webhookTimestamp: undefined };
}
function attackRequest() {
  const id = `bench-attack-${String(counter++).padStart(10, '0')}`;
  const ts = String(Math.floor(now() / 1000));
  const body = Buffer.alloc(Math.round(opts.bodyMib * 1024 * 1024), 0x20);
  // Well-formed Ed25519 signatures over other messages: OpenSSL refuses random bytes before
  // hashing (S >= L, R not a point), so the attack sends real signatures of something else.
  const entries = Array.from({ length: opts.entries }, (_, i) => `v1a,${sign(null, randomBytes(16 + i), attackerKey).toString('base64')}`);
  return context({ 'webhook-id': id, 'webhook-timestamp': ts, 'webhook-signature': entries.join(' ') }, body);
}
function smallRequest() {
  const id = `bench-small-${String(counter++).padStart(11, '0')}`;
  const ts = String(Math.floor(now() / 1000));
  const body = Buffer.from(JSON.stringify({ source_pop: 'calgary-01', entries: [{ id: counter, op: 'upsert', data: 'x'.repeat(900) }] }));
  const sig = sign(null, Buffer.concat([Buffer.from(`${id}.${ts}.`), body]), ownKey.privateKey).toString('base64');
  return context({ 'webhook-id': id, 'webhook-timestamp': ts, 'webhook-signature': `v1a,${sig}` }, body);
}

async function outcome(ctx) {
  try {
    await stage.run(ctx);
    return 'passed';
  } catch (err) {
    if (err && typeof err.reason === 'string') return err.reason;
    throw err;
  }
}

const cpuMs = (u) => (u.user + u.system) / 1000;
// The main thread's time on a CPU, in ms (its task id is the process id); undefined off Linux.
const SCHEDSTAT = `/proc/self/task/${process.pid}/schedstat`;
const mainThreadMs = () => (existsSync(SCHEDSTAT) ? Number(readFileSync(SCHEDSTAT, 'utf8').split(' ')[0]) / 1e6 : undefined);

/** One attack request, with the event loop watched while it runs. */
async function measureAttack() {
  const ctx = attackRequest();
  // Deno's monitorEventLoopDelay is a stub that records nothing; the probe timer still measures.
  const eld = typeof globalThis.Deno === 'undefined' ? monitorEventLoopDelay({ resolution: 1 }) : undefined;
  let last = performance.now();
  let maxGap = 0;
  const probe = setInterval(() => {
    const t = performance.now();
    maxGap = Math.max(maxGap, t - last);
    last = t;
  }, 1);
  eld?.enable();
  await new Promise((r) => setTimeout(r, 20));
  // The histogram's first sample after a reset is dropped: reset, then let one sample through.
  eld?.reset();
  await new Promise((r) => setTimeout(r, 3));
  maxGap = 0;
  last = performance.now();
  const main0 = mainThreadMs();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const reason = await outcome(ctx);
  const wallMs = performance.now() - t0;
  const cpu = cpuMs(process.cpuUsage(cpu0));
  const main1 = mainThreadMs();
  // One more tick, so that a block that ends with the request is seen by the probe.
  await new Promise((r) => setTimeout(r, 5));
  eld?.disable();
  clearInterval(probe);
  return { reason, cpuMs: cpu, mainThreadCpuMs: main0 === undefined ? undefined : main1 - main0, wallMs, maxBlockMs: maxGap, eldMaxMs: eld ? eld.max / 1e6 : undefined };
}

async function measureSmall(count) {
  const reasons = new Set();
  const ctxs = Array.from({ length: count }, smallRequest);
  for (const c of ctxs.slice(0, 10)) reasons.add(await outcome(c)); // warm-up
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (const c of ctxs.slice(10)) reasons.add(await outcome(c));
  const done = count - 10;
  return { reasons: [...reasons], requests: done, cpuUsPerRequest: (cpuMs(process.cpuUsage(cpu0)) * 1000) / done, wallUsPerRequest: ((performance.now() - t0) * 1000) / done };
}

/** Per check, on each path: wall and main-thread microseconds, for one key and one entry. */
async function measureThreshold() {
  const { parseVerifyKey } = await load('replay/keys');
  const hmac = parseVerifyKey(`whsec_${randomBytes(32).toString('base64')}`);
  const ed = parseVerifyKey(ownKey.publicKey.export({ format: 'pem', type: 'spki' }).toString());
  const entry = (version) => [{ version, signature: version === 'v1' ? randomBytes(32) : sign(null, randomBytes(8), attackerKey) }];
  const rows = [];
  for (const size of [4, 16, 64, 256, 1024].map((k) => k * 1024)) {
    const body = Buffer.alloc(size, 0x20);
    const prefix = signature.signedPrefix('bench-threshold-0001', '1763800000');
    const row = { bytes: size };
    for (const [name, key] of [['hmac', hmac], ['ed25519', ed]]) {
      for (const [path, offThreadMinBytes] of [['loop', Infinity], ['large', 0]]) {
        const reps = Math.max(20, Math.min(2000, Math.floor((64 * 1024 * 1024) / size)));
        const run = () => signature.findVerifyingKey(entry(key.version), prefix, body, [key], { offThreadMinBytes });
        for (let i = 0; i < 10; i++) await run();
        const m0 = mainThreadMs();
        const t0 = performance.now();
        for (let i = 0; i < reps; i++) await run();
        row[`${name} ${path} wall us`] = ((performance.now() - t0) * 1000) / reps;
        if (m0 !== undefined) row[`${name} ${path} main us`] = ((mainThreadMs() - m0) * 1000) / reps;
      }
    }
    rows.push(row);
  }
  return rows;
}

if (opts.threshold) {
  if (signature.OFF_THREAD_MIN_BYTES === undefined) throw new Error('--threshold needs a build with the fix');
  const rows = await measureThreshold();
  rmSync(dir, { recursive: true, force: true });
  if (opts.json) console.log(JSON.stringify(rows, null, 2));
  else {
    const cols = Object.keys(rows[0]);
    console.log(cols.join(' | '));
    for (const r of rows) console.log(cols.map((c) => (c === 'bytes' ? String(r[c]) : r[c].toFixed(0))).join(' | '));
  }
  process.exit(0);
}

const runtime = typeof globalThis.Deno !== 'undefined' ? `deno ${globalThis.Deno.version.deno}` : `node ${process.versions.node}`;
if (opts.onLoop && signature.OFF_THREAD_MIN_BYTES === undefined) throw new Error('--on-loop needs a build with the fix');
const offThread = signature.OFF_THREAD_MIN_BYTES === undefined
  ? 'all on the main thread, every POP\'s keys tried (a build before the fix)'
  : opts.onLoop ? 'all on the main thread (--on-loop), own POP\'s keys only'
    : `from ${signature.OFF_THREAD_MIN_BYTES} bytes ${signature.HMAC_SLICE_BYTES === undefined ? 'off the main thread' : 'HMACs in slices and Ed25519 off the main thread'}, own POP's keys only`;
const attacks = [];
await measureAttack(); // warm-up (key imports, JIT)
for (let i = 0; i < opts.reps; i++) attacks.push(await measureAttack());
const small = opts.small > 10 ? await measureSmall(opts.small) : undefined;
rmSync(dir, { recursive: true, force: true });

const result = {
  runtime, build: base, checks: offThread,
  setup: { pops: opts.pops, keysPerPop: opts.keys, keysInConfig: opts.pops * opts.keys, entries: opts.entries, bodyMiB: opts.bodyMib },
  attacks, small,
};
if (opts.json) {
  console.log(JSON.stringify(result, null, 2));
} else {
  const f = (v) => (v === undefined ? '-' : v.toFixed(1));
  const stat = (k) => {
    const v = attacks.map((a) => a[k]).filter((x) => x !== undefined);
    if (v.length === 0) return '-';
    return `${f(v.reduce((s, x) => s + x, 0) / v.length)} (${f(Math.min(...v))}-${f(Math.max(...v))})`;
  };
  console.log(`${runtime}, ${result.build}: checks ${offThread}`);
  console.log(`attack: ${opts.entries} junk v1a entries, ${opts.bodyMib} MiB body, ${opts.pops} POPs x ${opts.keys} Ed25519 keys; ${opts.reps} requests`);
  console.log(`  outcome                 ${[...new Set(attacks.map((a) => a.reason))].join(', ')}`);
  console.log(`  CPU ms / request        ${stat('cpuMs')}   (mean (min-max), all threads)`);
  console.log(`  main-thread CPU ms      ${stat('mainThreadCpuMs')}   (the event loop's busy time for the request)`);
  console.log(`  wall ms / request       ${stat('wallMs')}`);
  console.log(`  longest block ms        ${stat('maxBlockMs')}   (1 ms timer's longest gap: what another connection waits)`);
  console.log(`  eventLoopDelay max ms   ${stat('eldMaxMs')}`);
  if (small) console.log(`legitimate 1 KiB request (v1a, own key): ${small.reasons.join(', ')}; ${small.cpuUsPerRequest.toFixed(0)} us CPU, ${small.wallUsPerRequest.toFixed(0)} us wall per request over ${small.requests}`);
}
process.exit(0);
