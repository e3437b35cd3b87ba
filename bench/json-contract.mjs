#!/usr/bin/env node
// What the body contract costs for the four pathological bodies of issue 15 class 7(b) (within
// the 10 MiB body limit: 4M nested arrays, 400k keys in one object, 3.4M empty objects, 300k
// escaped non-ASCII keys), for the worst bodies the default bounds still let through, and for
// an honest batch: CPU per check and the event loop's longest block meanwhile, run through the
// body contract of a build, in process (what the stage runs: sliced above 64 KiB).
//
//   npm run build && node bench/json-contract.mjs          # this checkout (dist/)
//   node bench/json-contract.mjs --dist /tmp/before/dist   # another build, e.g. before the bounds
//   node_modules/.bin/deno run -A bench/json-contract.mjs --src   # Deno, from src/
//   options: --reps 3 --json
//
// Per body: the outcome (reason code), CPU of the process (process.cpuUsage; median of the
// reps), and the longest gap between the ticks of a 1 ms timer while the check ran: how long
// another connection waited. A build without the bounds (before) is called the way its stage
// called it: parseReplicationBody(body), all at once.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import process from 'node:process';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
const opts = { dist: join(ROOT, 'dist'), src: false, reps: 3, json: false };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--dist') opts.dist = resolve(process.argv[++i]);
  else if (a === '--src') opts.src = true;
  else if (a === '--reps') opts.reps = Number(process.argv[++i]);
  else if (a === '--json') opts.json = true;
  else throw new Error(`unknown option ${a}`);
}
const base = opts.src ? join(ROOT, 'src') : opts.dist;
const ext = existsSync(join(base, 'replay', 'body-contract.ts')) ? '.ts' : '.js';
const contract = await import(pathToFileURL(join(base, 'replay', `body-contract${ext}`)).href);
const sliced = typeof contract.parseReplicationBodyInSlices === 'function';
const { configSchema } = await import(pathToFileURL(join(base, 'config', `schema${ext}`)).href);
const bounds = sliced ? contract.jsonBounds(configSchema.shape.limits.parse({})) : undefined;

const HEAD = '{"source_pop":"calgary-01","entries":';
const keys = (n, key, per = n) => {
  const objects = [];
  for (let o = 0; o < n / per; o++) {
    const members = [];
    for (let i = 0; i < per; i++) members.push(`"${key(o * per + i)}":0`);
    objects.push(`{${members.join(',')}}`);
  }
  return `${HEAD}[${objects.join(',')}]}`;
};
const entry = '{"id":123456,"op":"upsert","table":"accounts","key":"user:42","value":{"name":"\\u00e9l\\u00e8ve","plan":"pro","seats":12}}';
const bodies = [
  ['4M nested arrays', () => `${HEAD}${'['.repeat(4_000_000)}${']'.repeat(4_000_000)}}`],
  ['400k keys, one object', () => `{${Array.from({ length: 400_000 }, (_, i) => `"k${i}":0`).join(',')}}`],
  ['3.4M empty objects', () => `${HEAD}[${Array(3_400_000).fill('{}').join(',')}]}`],
  ['300k escaped non-ASCII keys', () => `{${Array.from({ length: 300_000 }, (_, i) => `"\\u00e9\\u00e8${i}":0`).join(',')}}`],
  // The worst the defaults let through (max_json_values 200000, 1000 keys per object).
  ['within bounds: 199k empty objects', () => `${HEAD}[${Array(199_990).fill('{}').join(',')}]}`],
  ['within bounds: 99k unique escaped keys', () => keys(99_000, (i) => `\\u00e9\\u00e8${i}`, 1000)],
  ['honest: 10k entries (1.2 MiB)', () => `${HEAD}[${Array(10_000).fill(entry).join(',')}]}`],
];

async function measure(body) {
  let longest = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  await new Promise((r) => setTimeout(r, 5));
  last = performance.now();
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  let outcome = 'passed';
  try {
    if (sliced && body.length > 64 * 1024) await contract.parseReplicationBodyInSlices(body, bounds);
    else if (sliced) contract.parseReplicationBody(body, bounds);
    else contract.parseReplicationBody(body);
  } catch (err) {
    outcome = err.reason ?? `error: ${err.message}`;
  }
  const wall = performance.now() - wall0;
  const cpu = process.cpuUsage(cpu0);
  longest = Math.max(longest, performance.now() - last);
  clearInterval(timer);
  return { outcome, cpuMs: (cpu.user + cpu.system) / 1000, wallMs: wall, longestBlockMs: longest };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = [];
for (const [name, make] of bodies) {
  const body = Buffer.from(make());
  const runs = [];
  for (let r = 0; r < opts.reps; r++) runs.push(await measure(body));
  rows.push({
    body: name, mib: body.length / 1048576, outcome: runs[0].outcome,
    cpuMs: median(runs.map((r) => r.cpuMs)), wallMs: median(runs.map((r) => r.wallMs)), longestBlockMs: median(runs.map((r) => r.longestBlockMs)),
  });
}
if (opts.json) console.log(JSON.stringify({ build: base, sliced, bounds, rows }, null, 2));
else {
  console.log(`build ${base} (${sliced ? 'with the structure bounds, sliced' : 'no bounds, all at once'}); ${process.versions.deno ? `Deno ${process.versions.deno}` : `Node ${process.version}`}; median of ${opts.reps}`);
  console.log('| body | MiB | outcome | CPU ms | wall ms | longest event-loop block ms |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.body} | ${r.mib.toFixed(2)} | ${r.outcome} | ${r.cpuMs.toFixed(1)} | ${r.wallMs.toFixed(1)} | ${r.longestBlockMs.toFixed(1)} |`);
}
