#!/usr/bin/env node
// replguard benchmark harness (issue 10). One command:
//   node bench/run.mjs [--smoke] [--targets a,b] [--duration 10] [--reps 3] [--warmup 1]
// See bench/README.md. Loopback only; every process it starts is killed on exit and on Ctrl-C.
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makePki, makeBody, buildShim } from './lib/fixtures.mjs';
import { TARGETS, REFERENCE, FLOOR, startUpstream, caddyVersion, MAX_FLOOD_RATE } from './lib/targets.mjs';
import { describeKind, FLOOD_MEANING } from './lib/flood.mjs';
import { preflight } from './lib/preflight.mjs';
import { measure } from './lib/load.mjs';
import { aggregate, renderMarkdown } from './lib/report.mjs';
import { killAll, stopProcess, runBounded, treeMemory, sleep } from './lib/proc.mjs';

/** Where run.mjs's own report ends in RESULTS.md; what follows is kept on a rerun. */
const APPENDIX_MARKER = '<!-- appendix: recorded by hand, kept by run.mjs -->';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.dirname(benchDir);
const HTTP_PROXY_VERSION = '1.18.1';

const { values: opt } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    targets: { type: 'string' },
    duration: { type: 'string' },
    reps: { type: 'string' },
    warmup: { type: 'string' },
    scenarios: { type: 'string' },
    'fixed-connections': { type: 'string', default: '16' },
    'fixed-delay-ms': { type: 'string', default: '8' },
    'flood-rate': { type: 'string', default: '50' },
    'flood-concurrency': { type: 'string', default: '16' },
    'retry-noisy': { type: 'string' },
    profile: { type: 'boolean', default: false },
    'node-args': { type: 'string', default: '' },
    out: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});

if (opt.help) {
  process.stdout.write(`usage: node bench/run.mjs [--smoke] [--targets ${TARGETS.map((t) => t.name).join(',')}]
  [--duration 10] [--reps 3] [--warmup 1] [--scenarios fixed-1k,sat-1k,sat-1m,flood]
  [--fixed-connections 16] [--fixed-delay-ms 8] [--flood-rate 50] [--flood-concurrency 16] [--retry-noisy 2] [--profile] [--node-args "--flag ..."] [--out DIR]
Writes bench/RESULTS.md and bench/results.json (with --smoke or --profile: into bench/.run/ only).
--profile runs the Node targets under --cpu-prof (their figures are then inflated; the profiles
land in the run directory; summarise one with node bench/profile-top.mjs FILE.cpuprofile).\n`);
  process.exit(0);
}

const smoke = opt.smoke;
const duration = Number(opt.duration ?? (smoke ? 2 : 10));
const reps = Number(opt.reps ?? (smoke ? 1 : 3));
const warmup = Number(opt.warmup ?? 1);
const retryNoisy = Number(opt['retry-noisy'] ?? (smoke ? 0 : 2));
for (const [k, v] of Object.entries({ duration, reps, warmup, 'retry-noisy': retryNoisy + 1 })) {
  if (!Number.isInteger(v) || v < 1 || v > 600) { console.error(`--${k} must be an integer 1..600 (wrk takes whole seconds)`); process.exit(2); }
}

const fixedConns = Number(opt['fixed-connections']);
const fixedDelay = Number(opt['fixed-delay-ms']);
const floodRate = Number(opt['flood-rate']);
const floodConcurrency = Number(opt['flood-concurrency']);
// Each flood kind must stay under the replguard targets' ban threshold (lib/targets.mjs), or
// replguard would ban it and the kind would no longer meet its own check.
if (!Number.isInteger(floodRate) || floodRate < 1 || floodRate > MAX_FLOOD_RATE) { console.error(`--flood-rate must be an integer 1..${MAX_FLOOD_RATE} (attempts a second per flood kind; above it the replguard targets would ban the flood's addresses)`); process.exit(2); }
// under replguard's default limits.max_unauthenticated_per_address (32)
if (!Number.isInteger(floodConcurrency) || floodConcurrency < 1 || floodConcurrency > 16) { console.error('--flood-concurrency must be an integer 1..16 (connections in flight per flood kind)'); process.exit(2); }
/**
 * The targets the flood scenario runs against: the peers with an address rule and a peer-name
 * check, and replguard. The smoke run (CI) floods two of them only, to stay short: the flood
 * code is the same for all, and the others' rules are preflighted and loaded in every scenario.
 */
const FLOOD_TARGETS = smoke && !opt.targets ? ['nginx', 'replguard'] : ['nginx', 'haproxy', 'caddy', 'replguard', 'replguard-deno', 'replguard-full'];
const ALL_SCENARIOS = [
  { name: 'fixed-1k', body: '1k', connections: fixedConns, delayMs: fixedDelay,
    about: `1 KiB POST at a fixed offered load (${fixedConns} connections, each waiting ${fixedDelay} ms between requests: about ${Math.round((fixedConns * 1000) / (fixedDelay + 0.5))} req/s)` },
  { name: 'sat-1k', body: '1k', connections: 64, about: '1 KiB POST at saturation (64 connections, no think time)' },
  { name: 'sat-1m', body: '1m', connections: 8, about: '1 MiB POST at 8 connections, no think time' },
  { name: 'flood', body: '1k', connections: fixedConns, delayMs: fixedDelay, targets: FLOOD_TARGETS,
    flood: { rate: floodRate, concurrency: floodConcurrency },
    about: `the fixed-1k load of the legitimate POP (calgary-01, from 127.0.0.1) while three kinds of client flood the target, each from its own loopback address at ${floodRate} new connections a second (at most ${floodConcurrency} in flight): (a) TLS handshakes without a certificate, (b) a valid certificate of another name (toronto-02) with a forged JWT, (c) a banned address (127.0.0.2) reconnecting with a valid certificate that names no peer` },
];
const scenarios = opt.scenarios
  ? opt.scenarios.split(',').map((n) => ALL_SCENARIOS.find((s) => s.name === n) ?? (() => { console.error(`unknown scenario ${n}`); process.exit(2); })())
  : ALL_SCENARIOS;

const wanted = opt.targets ? opt.targets.split(',') : TARGETS.map((t) => t.name);
for (const n of wanted) if (!TARGETS.some((t) => t.name === n)) { console.error(`unknown target ${n}; known: ${TARGETS.map((t) => t.name).join(', ')}`); process.exit(2); }
if (!wanted.includes(REFERENCE)) console.error(`note: ${REFERENCE} not selected, so no ratios can be computed`);

const log = (...a) => console.log(...a);
// version banners: nginx -v writes to stderr
const sh = (cmd, args) => { const r = spawnSync(cmd, args, { encoding: 'utf8' }); return `${r.stdout ?? ''}${r.stderr ?? ''}`; };
const firstLine = (s) => s.split('\n').find((l) => l.trim()) ?? '?';

/** The vendored bench kit must match the team's shared copy when that exists. */
function kitDir() {
  const vendored = path.join(benchDir, 'kit');
  const shared = path.join(repoRoot, '..', 'shared', 'tools', 'bench-kit');
  for (const f of ['post.lua', 'sslcert_preload.c']) {
    const s = path.join(shared, f);
    if (existsSync(s) && readFileSync(s, 'utf8') !== readFileSync(path.join(vendored, f), 'utf8')) {
      console.error(`warning: bench/kit/${f} differs from ${s}; update the vendored copy`);
    }
  }
  return vendored;
}

/** http-proxy for the reference peer, installed at run time into the gitignored bench/.run/. */
async function installHttpProxy(dir) {
  const marker = path.join(dir, 'node_modules', 'http-proxy', 'package.json');
  if (existsSync(marker)) return { dir };
  mkdirSync(dir, { recursive: true });
  const res = await runBounded('npm', ['install', '--prefix', dir, '--no-save', '--no-audit', '--no-fund', '--silent',
    `http-proxy@${HTTP_PROXY_VERSION}`], { env: process.env, timeoutMs: 120000 });
  if (res.code !== 0 || !existsSync(marker)) return { error: `npm install exit ${res.code}: ${res.stderr.trim().slice(0, 300)}` };
  return { dir };
}

function describeRun(r, retrying) {
  const m = r.machine;
  if (r.scenario === 'flood') {
    return `rep ${r.rep} ${r.scenario.padEnd(8)} ${r.target.padEnd(15)} ${r.valid ? 'valid  ' : 'INVALID'} ` +
      `legit ${r.legitSuccess === null ? '–' : (100 * r.legitSuccess).toFixed(2)}% ok, ${r.rps.toFixed(0)} req/s, p50 ${r.p50us ?? '–'} p99 ${r.p99us ?? '–'} µs; ` +
      `flood refused ${r.floodRefusedPerS?.toFixed(0) ?? '–'}/s` +
      `${r.flood ? ` [${Object.entries(r.flood.kinds).map(([n, k]) => `${n}: ${describeKind(k)}`).join('; ')}]` : ''}; ` +
      `target ${r.targetCores.toFixed(2)} cores, flood client ${r.floodClientCores.toFixed(2)} cores, steal ${m.stealPct.toFixed(1)}% other ${m.otherCores.toFixed(2)} cores` +
      `${r.noisy ? ` NOISY (${m.otherTop.join(', ')})` : ''}${r.valid ? '' : ` (${r.invalidReason})`}${retrying ? ' -> repeating' : ''}`;
  }
  return `rep ${r.rep} ${r.scenario.padEnd(8)} ${r.target.padEnd(15)} ${r.valid ? 'valid  ' : 'INVALID'} ` +
    `cpu ${r.cpuUsPerReq?.toFixed(1) ?? '–'} µs/req, ${r.rps.toFixed(0)} req/s, p50 ${r.p50us ?? '–'} p99 ${r.p99us ?? '–'} µs, ` +
    `${r.uploadMBps.toFixed(1)} MB/s, wrk ${r.wrkUsPerReq?.toFixed(1) ?? '–'} µs/req, upstream ${r.upstreamUsPerReq?.toFixed(1) ?? '–'} µs/req ${r.upstreamConnections ?? '–'} conns, ` +
    `steal ${m.stealPct.toFixed(1)}% other ${m.otherCores.toFixed(2)} kthreads ${m.kernelThreadCores.toFixed(2)} irq ${m.irqCores.toFixed(2)} cores` +
    `${r.noisy ? ` NOISY (${m.otherTop.join(', ')})` : ''}${r.valid ? '' : ` (${r.invalidReason})`}${retrying ? ' -> repeating' : ''}`;
}

/**
 * One measurement; a noisy one is repeated up to --retry-noisy times. Earlier attempts are kept
 * (results.json, superseded: true) but left out of the medians.
 */
async function measureRetryingNoisy(target, started, sc, ctx, rep) {
  const attempts = [];
  for (let attempt = 1; ; attempt++) {
    const r = await measure(target, started, sc, ctx, { duration, warmup });
    Object.assign(r, { rep, attempt, superseded: false });
    const retrying = r.valid && r.noisy && attempt <= retryNoisy;
    r.superseded = retrying;
    attempts.push(r);
    log(describeRun(r, retrying));
    if (!retrying) return attempts;
  }
}

async function main() {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const runRoot = path.join(benchDir, '.run');
  const runDir = path.join(runRoot, `${smoke ? 'smoke-' : ''}${opt.profile ? 'profile-' : ''}${stamp}`);
  mkdirSync(runDir, { recursive: true });
  // only a plain full run replaces the committed results
  const outDir = opt.out ?? (smoke || opt.profile || opt['node-args'] ? runDir : benchDir);
  // Fail before anything is measured if the results could not be written at the end: a folder
  // that exists but is read-only (or a path that is a file) must not cost a whole run.
  try {
    mkdirSync(outDir, { recursive: true });
    const probe = path.join(outDir, `.write-probe-${process.pid}`);
    writeFileSync(probe, '');
    rmSync(probe);
  } catch (err) {
    console.error(`bench: --out ${outDir} is not a writable folder (${err.code ?? err.message}); pick another --out`);
    process.exit(2);
  }
  log(`bench: run directory ${path.relative(repoRoot, runDir)}`);

  const kit = kitDir();
  mkdirSync(path.join(runDir, 'pki'), { recursive: true });
  const pki = makePki(path.join(runDir, 'pki'));
  const bodies = {};
  for (const [k, size] of [['1k', 1024], ['1m', 1024 * 1024]]) {
    bodies[k] = path.join(runDir, `body-${k}.json`);
    writeFileSync(bodies[k], makeBody(size));
    // for pre-signed requests (replguard-full): no timestamp/nonce fields to repeat per request
    bodies[`${k}-signed`] = path.join(runDir, `body-${k}-signed.json`);
    writeFileSync(bodies[`${k}-signed`], makeBody(size, { signed: true }));
  }
  const ctx = {
    benchDir, repoRoot, runDir, pki, bodies,
    shim: buildShim(kit, runRoot),
    kitDir: kit,
    postLua: path.join(kit, 'post.lua'),
    // extra V8/Node flags for the Node targets (node-floor, http-proxy-min, replguard): experiments
    nodeArgs: [
      ...opt['node-args'].split(/\s+/).filter(Boolean),
      ...(opt.profile ? ['--cpu-prof', '--cpu-prof-dir', path.join(runDir, 'profiles')] : []),
    ],
  };
  if (wanted.includes('http-proxy-min')) {
    const hp = await installHttpProxy(path.join(runRoot, 'npm'));
    ctx.httpProxyDir = hp.dir;
    ctx.httpProxyError = hp.error;
  }

  ctx.upstream = await startUpstream(ctx);
  log(`bench: upstream nginx on 127.0.0.1:${ctx.upstream.port}`);

  const selected = TARGETS.filter((t) => wanted.includes(t.name));
  const unavailable = [];
  const preflights = [];
  const idle = [];
  const live = [];
  for (const t of selected) {
    const reason = t.unavailable(ctx);
    if (reason) {
      unavailable.push({ name: t.name, reason });
      log(`bench: target ${t.name}: UNAVAILABLE, not measured: ${reason}`);
      continue;
    }
    let started;
    try {
      started = await t.start(ctx);
    } catch (err) {
      unavailable.push({ name: t.name, reason: `failed to start: ${err.message}` });
      log(`bench: target ${t.name}: failed to start, not measured: ${err.message}`);
      continue;
    }
    // idle memory: after start, before any request (issue 22: a light sidecar)
    if (!started.shared) {
      await sleep(1000);
      const mem = treeMemory(started.child.pid);
      idle.push({ target: t.name, rssKb: mem.rssKb, pssKb: mem.pssKb });
    }
    const pf = await preflight(t, started, ctx);
    preflights.push({ target: t.name, ...pf });
    log(`bench: target ${t.name} on 127.0.0.1:${started.port} pid ${started.child.pid}: preflight ${pf.pass ? 'pass' : 'FAIL'}`);
    for (const c of pf.checks) log(`        ${c.pass ? 'ok  ' : 'FAIL'} ${c.check}: ${typeof c.got === 'string' ? c.got : JSON.stringify(c.got)}`);
    if (pf.pass) live.push({ target: t, started });
    else if (!started.shared) await stopProcess(started.child);
  }

  const runs = [];
  for (let rep = 1; rep <= reps; rep++) {
    for (const sc of scenarios) {
      // rotate the target order per repetition so no target always runs first or last
      const order = live.map((_, i) => live[(i + rep - 1) % live.length]);
      for (const { target, started } of order) {
        if (sc.targets && !sc.targets.includes(target.name)) continue;
        runs.push(...await measureRetryingNoisy(target, started, sc, ctx, rep));
      }
    }
  }

  for (const { started } of live) if (!started.shared) await stopProcess(started.child);
  await stopProcess(ctx.upstream.child);

  const measuredTargets = live.map((l) => l.target);
  const agg = aggregate(runs.filter((r) => !r.superseded), scenarios, measuredTargets.map((t) => t.name), REFERENCE, FLOOR);
  const meta = {
    date: new Date().toISOString(),
    command: `node bench/run.mjs ${process.argv.slice(2).join(' ')}`.trim(),
    nproc: os.availableParallelism?.() ?? os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? '?',
    kernel: `${os.type()} ${os.release()}`,
    loadavg: os.loadavg().map((x) => x.toFixed(2)).join(' '),
    versions: {
      node: process.version,
      nginx: firstLine(sh('nginx', ['-v'])).trim(),
      haproxy: firstLine(sh('haproxy', ['-v'])).replace(/ - https.*/, '').trim(),
      caddy: caddyVersion() ?? 'caddy not installed',
      wrk: firstLine(sh('wrk', ['-v'])).replace(/ Copyright.*/, '').trim(),
      openssl: firstLine(sh('openssl', ['version'])).trim(),
    },
    smoke, reps, duration, warmup, retryNoisy, profile: opt.profile, nodeArgs: opt['node-args'],
    notes: opt.profile ? ['PROFILING RUN: Node targets ran under --cpu-prof, their CPU figures are inflated; do not compare.'] : [],
  };
  for (const u of unavailable) meta.notes.push(`${u.name} was not measurable in this run: ${u.reason}`);
  const result = { meta, scenarios, targets: measuredTargets.map(({ name, about }) => ({ name, about })), unavailable, preflights, idle, runs, aggregate: agg };
  writeFileSync(path.join(outDir, 'results.json'), `${JSON.stringify(result, null, 2)}\n`);
  // The figures of the other bench scripts (e.g. json-contract.mjs) live below APPENDIX_MARKER
  // in the same file, recorded by hand with their command: a rerun keeps them.
  const resultsPath = path.join(outDir, 'RESULTS.md');
  const previous = existsSync(resultsPath) ? readFileSync(resultsPath, 'utf8') : '';
  const appendix = previous.includes(APPENDIX_MARKER) ? previous.slice(previous.indexOf(APPENDIX_MARKER)) : '';
  writeFileSync(resultsPath, `${renderMarkdown({ ...result, agg, targets: measuredTargets, floodMeaning: FLOOD_MEANING })}${appendix ? `\n${appendix}` : ''}`);
  log(`bench: wrote ${path.relative(repoRoot, path.join(outDir, 'RESULTS.md'))} and results.json`);

  for (const sc of scenarios) {
    for (const t of measuredTargets) {
      const a = agg[sc.name][t.name];
      if (!a) continue;
      log(`summary ${sc.name.padEnd(8)} ${t.name.padEnd(15)} cpu ${a.cpuUsPerReq?.median.toFixed(1) ?? '–'} µs/req` +
        ` x nginx ${a.cpuRatio?.median.toFixed(2) ?? "–"} x undici-min ${a.cpuFloorRatio?.median.toFixed(2) ?? "–"}  req/s ${a.rps?.median.toFixed(0) ?? '–'}  valid ${a.valid}/${a.runs}`);
    }
  }

  if (smoke) {
    const problems = [];
    if (!live.length) problems.push('no target was measured');
    // a target named explicitly with --targets must be measurable (CI names replguard)
    if (opt.targets) for (const u of unavailable) problems.push(`${u.name} unavailable: ${u.reason}`);
    for (const p of preflights) if (!p.pass) problems.push(`preflight failed for ${p.target}`);
    for (const sc of scenarios) {
      for (const t of measuredTargets) {
        if (sc.targets && !sc.targets.includes(t.name)) continue;
        const a = agg[sc.name][t.name];
        if (!a?.valid) problems.push(`${sc.name} ${t.name}: no valid run`);
        else if (wanted.includes(REFERENCE) && !a.cpuRatio) problems.push(`${sc.name} ${t.name}: no ratio to ${REFERENCE}`);
      }
    }
    if (problems.length) {
      for (const p of problems) console.error(`bench-smoke: ${p}`);
      console.log('bench-smoke: FAILED');
      process.exitCode = 1;
    } else {
      console.log('bench-smoke: ok');
    }
  }
}

main().catch((err) => {
  console.error(`bench: ${err.stack ?? err}`);
  killAll('SIGKILL');
  process.exitCode = 1;
});
