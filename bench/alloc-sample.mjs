// Allocation sampling of a bench target, garbage included: preload it into a Node target with
//
//   node bench/run.mjs --node-args="--import=./bench/alloc-sample.mjs" --targets undici-min,replguard \
//     --scenarios fixed-1k --reps 1 --duration 5 --retry-noisy 0
//
// (the path is resolved from the target's working directory, the repository root). It starts
// V8's sampling heap profiler in the target's own process (node:inspector, no port opened) with
// objects collected by minor and major GCs kept in the profile, so the profile counts what was
// allocated, not what is still alive; at SIGTERM (the harness stops every target with it) it
// writes `alloc-<pid>.heapprofile` into bench/.run/alloc/ (created). Summarise one with
// `node bench/alloc-top.mjs FILE [requests]`. Node only (Deno has no node:inspector Session).
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';
import process from 'node:process';

const out = join(process.cwd(), 'bench', '.run', 'alloc');
// One sample per 1 KiB allocated on average (V8's default is 32 KiB): fine enough for objects of
// a few hundred bytes per request over a 5 s run.
const SAMPLING_INTERVAL = 1024;

const session = new Session();
session.connect();
session.post('HeapProfiler.enable');
session.post('HeapProfiler.startSampling', {
  samplingInterval: SAMPLING_INTERVAL,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true,
}, (err) => {
  if (err) process.stderr.write(`alloc-sample: could not start sampling: ${err.message}\n`);
});
function onTerm() {
  // The in-process session answers synchronously: the file is written before the target's own
  // SIGTERM handler has finished draining.
  session.post('HeapProfiler.stopSampling', (err, result) => {
    if (err) process.stderr.write(`alloc-sample: could not stop sampling: ${err.message}\n`);
    else {
      mkdirSync(out, { recursive: true });
      writeFileSync(join(out, `alloc-${process.pid}.heapprofile`), JSON.stringify(result.profile));
    }
  });
  // A listener takes SIGTERM's default (exit) away: a target with no handler of its own (the
  // bench's servers) would then wait for the harness's SIGKILL. Give it the default back.
  process.off('SIGTERM', onTerm);
  if (process.listenerCount('SIGTERM') === 0) process.kill(process.pid, 'SIGTERM');
}
process.on('SIGTERM', onTerm);
