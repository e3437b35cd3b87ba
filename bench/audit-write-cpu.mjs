#!/usr/bin/env node
// CPU per audit event at a steady, sparse rate (issue 22 part 2): one event per 0.5 ms timer
// tick written through createAuditLog of a build to stdout (redirect it to a file), the whole
// process's CPU (process.cpuUsage: the main thread and the libuv pool that does the writes) per
// event, beside the same timer loop writing nothing. Linux or any OS; not part of run.mjs or CI.
//
//   npm run build && node bench/audit-write-cpu.mjs > /tmp/audit.ndjson
//   node bench/audit-write-cpu.mjs --dist /tmp/before/dist > /tmp/audit.ndjson
//   options: --events 4000, --reps 3
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
const { values: opt } = parseArgs({
  options: { dist: { type: 'string', default: resolve(ROOT, 'dist') }, events: { type: 'string', default: '4000' }, reps: { type: 'string', default: '3' } },
});
const dist = resolve(opt.dist);
const N = Number(opt.events);
const { createAuditLog } = await import(pathToFileURL(`${dist}/audit/audit-log.js`).href);
const { reloadEvent } = await import(pathToFileURL(`${dist}/audit/control-events.js`).href);

/** CPU µs per tick of a 0.5 ms timer loop that calls `each` once a tick. */
async function perTick(each) {
  let i = 0;
  const t0 = process.cpuUsage();
  await new Promise((done) => {
    const tick = () => {
      each(i);
      if (++i === N) done();
      else setTimeout(tick, 0.5);
    };
    tick();
  });
  await new Promise((r) => setTimeout(r, 50));
  const c = process.cpuUsage(t0);
  return (c.user + c.system) / N;
}

const log = createAuditLog({ stdout: true });
await log.ready();
const rows = [];
for (let rep = 0; rep < Number(opt.reps); rep++) {
  const idle = await perTick(() => undefined);
  const audited = await perTick((i) => log.write(reloadEvent('success', `event ${i}`, undefined)));
  rows.push({ idle, audited });
}
await log.close();
const f = (xs) => `${Math.min(...xs).toFixed(1)} to ${Math.max(...xs).toFixed(1)}`;
process.stderr.write(`build ${dist}; Node ${process.version}; ${N} events per rep, CPU µs per tick\n`);
process.stderr.write(`timer loop only ${f(rows.map((r) => r.idle))} | with one audit event a tick ${f(rows.map((r) => r.audited))} | the event's own cost ${f(rows.map((r) => r.audited - r.idle))}\n`);
