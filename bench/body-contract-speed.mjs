#!/usr/bin/env node
// Throughput of the body contract (issue 22, part 1): MB/s of parseReplicationBody of a build,
// in process, beside JSON.parse of the same bytes (decoded first, as any JSON.parse must be),
// and beside another build (e.g. main before the one-pass contract) when --before is given.
//
//   npm run build && node bench/body-contract-speed.mjs
//   node bench/body-contract-speed.mjs --before /tmp/before/dist      # before/after (README)
//   node_modules/.bin/deno run -A bench/body-contract-speed.mjs --src [--before /tmp/before/src]
//   options: --reps 5 --ms 400 --json
//
// Bodies: a typical batch of 1 KiB and of 1 MiB (entries with a few short fields, escapes
// included), and two worst cases the default bounds let through at 1 MiB: tiny strings dense
// with escapes, and objects of 1000 distinct keys each (every key decoded, none cached).
// Each figure: bytes checked per CPU second of the process (process.cpuUsage: on a busy machine
// the time spent waiting for a core is left out), the median of the reps, each rep as many calls
// as fit in --ms of wall time, the contenders' reps interleaved. The large bodies
// are called all at once (parseReplicationBody), not in slices: the slices change when other
// connections run, not the work.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import process from 'node:process';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
const opts = { dist: join(ROOT, 'dist'), src: false, before: undefined, reps: 5, ms: 400, json: false };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--dist') opts.dist = resolve(process.argv[++i]);
  else if (a === '--src') opts.src = true;
  else if (a === '--before') opts.before = resolve(process.argv[++i]);
  else if (a === '--reps') opts.reps = Number(process.argv[++i]);
  else if (a === '--ms') opts.ms = Number(process.argv[++i]);
  else if (a === '--json') opts.json = true;
  else throw new Error(`unknown option ${a}`);
}

async function load(base) {
  const ext = existsSync(join(base, 'replay', 'body-contract.ts')) ? '.ts' : '.js';
  const contract = await import(pathToFileURL(join(base, 'replay', `body-contract${ext}`)).href);
  const { configSchema } = await import(pathToFileURL(join(base, 'config', `schema${ext}`)).href);
  const bounds = contract.jsonBounds(configSchema.shape.limits.parse({}));
  return (body) => contract.parseReplicationBody(body, bounds);
}

const HEAD = '{"source_pop":"calgary-01","timestamp":1763800000,"nonce":"msg_2KWPBgLlAfxdpx2AI54pPJ85f4W","entries":[';
const entry = (i) => `{"id":${100000 + i},"op":"upsert","table":"accounts","key":"user:${i}","value":{"name":"\\u00e9l\\u00e8ve \\"${i}\\"","plan":"pro","seats":${i % 50},"active":true}}`;
const batch = (bytes) => {
  const parts = [];
  let size = HEAD.length + 2;
  for (let i = 0; size < bytes; i++) {
    const e = entry(i);
    parts.push(e);
    size += e.length + 1;
  }
  return `${HEAD}${parts.join(',')}]}`;
};
const escapes = () => {
  // 8-byte strings, half of them escapes: 120k strings plus a few arrays, within max_json_values.
  const row = Array.from({ length: 100 }, (_, i) => (i % 2 ? '"\\u00e9\\n"' : '"a\\"b\\\\"')).join(',');
  return `${HEAD}${Array(1200).fill(`[${row}]`).join(',')}]}`;
};
const distinctKeys = () => {
  const objects = [];
  for (let o = 0; o < 85; o++) objects.push(`{${Array.from({ length: 1000 }, (_, k) => `"f${o}_${k}":${k}`).join(',')}}`);
  return `${HEAD}${objects.join(',')}]}`;
};
const bodies = [
  ['typical batch, 1 KiB', batch(1024)],
  ['typical batch, 1 MiB', batch(1 << 20)],
  ['worst: tiny strings dense with escapes, 1 MiB', escapes()],
  ['worst: 1000 distinct keys per object, 1 MiB', distinctKeys()],
];

// CPU seconds of the process (user + system): on a busy machine, time spent waiting for a core
// is not the contract's cost.
const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** One rep: as many calls as fit in --ms of wall time; MB per CPU second. */
function rep(fn, body) {
  let calls = 0;
  const t0 = performance.now();
  const c0 = cpuSeconds();
  while (performance.now() - t0 < opts.ms) {
    fn(body);
    calls += 1;
  }
  return (calls * body.length) / 1e6 / (cpuSeconds() - c0);
}

const base = opts.src ? join(ROOT, 'src') : opts.dist;
const contenders = [['one pass (this build)', await load(base)]];
if (opts.before) contenders.push(['before (--before build)', await load(opts.before)]);
contenders.push(['JSON.parse (decode + parse)', (body) => JSON.parse(body.toString('utf8'))]);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = [];
for (const [name, text] of bodies) {
  const body = Buffer.from(text);
  const row = { body: name, bytes: body.length, outcome: 'passed', mbPerCpuS: {} };
  try {
    contenders[0][1](body);
  } catch (err) {
    row.outcome = err.reason ?? err.message;
  }
  // Reps interleaved, so that the machine's load falls on every contender alike.
  const runs = contenders.map(() => []);
  for (const [, fn] of contenders) fn(body); // warm
  for (let r = 0; r < opts.reps; r++) {
    for (const [k, [, fn]] of contenders.entries()) runs[k].push(rep(fn, body));
  }
  for (const [k, [who]] of contenders.entries()) row.mbPerCpuS[who] = median(runs[k]);
  rows.push(row);
}

const runtime = process.versions.deno ? `Deno ${process.versions.deno}` : `Node ${process.version}`;
if (opts.json) console.log(JSON.stringify({ build: base, before: opts.before, runtime, reps: opts.reps, ms: opts.ms, rows }, null, 2));
else {
  console.log(`${runtime}; build ${base}${opts.before ? `, before ${opts.before}` : ''}; MB per CPU second (10^6 bytes), median of ${opts.reps} x ${opts.ms} ms`);
  const names = contenders.map(([n]) => n);
  console.log(`| body | bytes | outcome | ${names.join(' | ')} |`);
  console.log(`|---|---|---|${names.map(() => '---').join('|')}|`);
  for (const r of rows) console.log(`| ${r.body} | ${r.bytes} | ${r.outcome} | ${names.map((n) => r.mbPerCpuS[n].toFixed(0)).join(' | ')} |`);
}
