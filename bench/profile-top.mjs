#!/usr/bin/env node
// Top self-time functions of a V8 .cpuprofile (from node --cpu-prof), and the same grouped by file.
// Usage: node bench/profile-top.mjs FILE.cpuprofile [N]
import { readFileSync } from 'node:fs';

const [file, nArg] = process.argv.slice(2);
if (!file) { console.error('usage: node bench/profile-top.mjs FILE.cpuprofile [N]'); process.exit(2); }
const n = Number(nArg ?? 25);
const prof = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(prof.nodes.map((node) => [node.id, node]));

// self time per node: sum of the sample intervals attributed to it
const self = new Map();
for (let i = 0; i < prof.samples.length; i++) {
  const dt = prof.timeDeltas[i + 1] ?? 0;
  self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + dt);
}
// percentages are of the busy time: (idle) is the event loop waiting, not cost
const idleIds = new Set(prof.nodes.filter((node) => node.callFrame.functionName === '(idle)').map((node) => node.id));
let idle = 0;
for (const id of idleIds) { idle += self.get(id) ?? 0; self.delete(id); }
const total = [...self.values()].reduce((a, b) => a + b, 0);
const shortUrl = (u) => (u ? u.replace(/^file:\/\/.*?\/(node_modules|dist)\//, '$1/').replace(/^node:/, 'node:') : '');
const fnKey = (cf) => `${cf.functionName || '(anonymous)'} ${shortUrl(cf.url)}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
const fileKey = (cf) => {
  const u = shortUrl(cf.url);
  if (!u) return cf.functionName.startsWith('(') ? cf.functionName : '(native)';
  const m = /^node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u);
  return m ? `node_modules/${m[1]}` : u;
};
const sum = (keyOf) => {
  const acc = new Map();
  for (const [id, t] of self) {
    const k = keyOf(byId.get(id).callFrame);
    acc.set(k, (acc.get(k) ?? 0) + t);
  }
  return [...acc].sort((a, b) => b[1] - a[1]).slice(0, n);
};
console.log(`${file}: ${(total / 1e6).toFixed(2)} s busy (+ ${(idle / 1e6).toFixed(2)} s idle); percentages of busy time`);
console.log('main JS thread only: OpenSSL work done inside a native call (e.g. writev on a TLS socket) is in that call\'s self time');
console.log('\nself time by function:');
for (const [k, t] of sum(fnKey)) console.log(`${((100 * t) / total).toFixed(1).padStart(5)}%  ${k}`);
console.log('\nself time by file / package:');
for (const [k, t] of sum(fileKey)) console.log(`${((100 * t) / total).toFixed(1).padStart(5)}%  ${k}`);

// inclusive time of the project's own functions (dist/) and of a few Node entry points: each
// sample counted once per function on its stack
const parent = new Map();
for (const node of prof.nodes) for (const c of node.children ?? []) parent.set(c, node.id);
const inclusive = new Map();
for (const [id, t] of self) {
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const cf = byId.get(cur).callFrame;
    if (!/\/dist\//.test(cf.url)) continue;
    const k = fnKey(cf);
    if (seen.has(k)) continue;
    seen.add(k);
    inclusive.set(k, (inclusive.get(k) ?? 0) + t);
  }
}
console.log('\ninclusive time of dist/ functions:');
for (const [k, t] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`${((100 * t) / total).toFixed(1).padStart(5)}%  ${k}`);
