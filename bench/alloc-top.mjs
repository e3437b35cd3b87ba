#!/usr/bin/env node
// What a target allocated, from a profile of bench/alloc-sample.mjs: bytes by allocating function
// (self), and by the nearest frame of replguard's own code (dist/) on the allocation's stack, so
// that what node:http, undici or pino allocate on replguard's behalf is charged to the stage that
// asked. With the number of requests the process served (the audit file's line count for
// replguard), figures are bytes per request; start-up's allocations are included, spread over
// them (a few hundred bytes a request for a run of some thousand requests).
//
//   node bench/alloc-top.mjs bench/.run/alloc/alloc-<pid>.heapprofile [requests] [N]
import { readFileSync } from 'node:fs';

const [file, requestsArg, nArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: node bench/alloc-top.mjs FILE.heapprofile [requests] [N]');
  process.exit(2);
}
const requests = Number(requestsArg ?? 1);
const n = Number(nArg ?? 25);
if (!(requests > 0) || !Number.isInteger(n) || n < 1) {
  console.error('requests must be a positive number and N a positive integer');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8'));
// file:// URLs (ES modules) and plain paths (CommonJS), both cut to the package or the build.
const shortUrl = (u) => (u ? u.replace(/^(?:file:\/\/)?\/.*?\/(node_modules|dist|bench)\//, '$1/') : '');
const frameKey = (cf) => `${cf.functionName || '(anonymous)'} ${shortUrl(cf.url)}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
const self = new Map();
const charged = new Map();
let total = 0;
// Iterative walk: deep stacks must not overflow the aggregator's own.
const stack = [{ node: profile.head, own: '(no dist/ frame)' }];
while (stack.length > 0) {
  const { node, own } = stack.pop();
  const key = frameKey(node.callFrame);
  const nearest = key.includes(' dist/') ? key : own;
  if (node.selfSize > 0) {
    total += node.selfSize;
    self.set(key, (self.get(key) ?? 0) + node.selfSize);
    charged.set(nearest, (charged.get(nearest) ?? 0) + node.selfSize);
  }
  for (const child of node.children) stack.push({ node: child, own: nearest });
}
const per = (bytes) => (bytes / requests).toFixed(0).padStart(8);
console.log(`${file}: ${(total / 1024 / 1024).toFixed(1)} MiB allocated in all, ${(total / requests / 1024).toFixed(1)} KiB per request over ${requests} requests`);
const top = (title, map) => {
  console.log(`\n${title} (bytes per request):`);
  for (const [key, bytes] of [...map].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`${per(bytes)}  ${key}`);
};
top('allocated by function (self)', self);
top('charged to the nearest dist/ frame', charged);
