#!/usr/bin/env node
// Resident memory of the secret-strength check (issue 22, part 3): VmRSS of this process, bare,
// after importing src/crypto/secret-strength of a build (zxcvbn's word lists), after one check
// (its ranked dictionaries built), and once the check has been idle for
// STRENGTH_DICTIONARIES_IDLE_MS (dropped, in a build that drops them). Garbage collected before
// each reading. Linux (/proc/self/status).
//
//   npm run build && node --expose-gc bench/strength-rss.mjs
//   node --expose-gc bench/strength-rss.mjs --dist /tmp/before/dist     # another build
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
const at = process.argv.indexOf('--dist');
const dist = at > 0 ? resolve(process.argv[at + 1]) : join(ROOT, 'dist');
if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc');
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
const settle = async () => {
  for (let k = 0; k < 4; k++) {
    globalThis.gc();
    await new Promise((r) => setTimeout(r, 50));
  }
};
await settle();
const bare = rss();
const m = await import(pathToFileURL(join(dist, 'crypto', 'secret-strength.js')).href);
await settle();
const imported = rss();
m.secretWeakness('Xq3v9LmT0pR7sW2yB6nF4hJ8kD1cG5aZeUoIiYtQwEr');
await settle();
const checked = rss();
await new Promise((r) => setTimeout(r, (m.STRENGTH_DICTIONARIES_IDLE_MS ?? 2000) + 200));
await settle();
const idle = rss();
console.log(`build ${dist}; Node ${process.version}; VmRSS MiB`);
console.log(`bare ${bare.toFixed(1)} | imported ${imported.toFixed(1)} | after a check ${checked.toFixed(1)} | idle after the check ${idle.toFixed(1)}`);
