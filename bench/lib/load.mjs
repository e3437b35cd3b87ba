// One measured run: wrk warm-up, /proc snapshots, wrk measured run, /proc snapshots, validity.
import { CLK_TCK, runBounded, treeTicks, treeMemory, machineStat, parseShellChildTicks, snapshotProcesses, othersTicks, mainThreadTicks, processTree } from './proc.mjs';
import http from 'node:http';
import { rmSync } from 'node:fs';
import { ROUTE } from './targets.mjs';
import { NOISE } from './report.mjs';
import { startFlood, floodWindow, legitSuccess, genericForgedJwt } from './flood.mjs';

/** Connections the upstream nginx has accepted so far (stub_status), or null. */
function upstreamAccepts(ctx) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port: ctx.upstream.statusPort, path: '/status', agent: false, timeout: 2000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        // "server accepts handled requests\n <accepts> <handled> <requests>"
        const m = /server accepts handled requests\s+(\d+)/.exec(text);
        resolve(m ? Number(m[1]) : null);
      });
    });
    req.on('error', () => resolve(null));
    req.on('timeout', () => { req.destroy(); resolve(null); });
  });
}

// wrk runs under /bin/sh so that, once wrk has been reaped, the shell's cutime+cstime are exactly
// wrk's own CPU time; the shell prints its /proc stat line after wrk exits.
const WRAPPER = 'if [ -n "$SHIM" ]; then LD_PRELOAD="$SHIM" wrk "$@"; else wrk "$@"; fi; rc=$?; ' +
  'echo "SHSTAT $(cat /proc/$$/stat)"; exit $rc';


async function wrk(target, started, scenario, ctx, seconds, extraEnv = {}) {
  const scheme = target.tls ? 'https' : 'http';
  const url = `${scheme}://127.0.0.1:${started.port}${ROUTE}`;
  const env = {
    PATH: process.env.PATH,
    BODY: ctx.bodies[target.signedBody ? `${scenario.body}-signed` : scenario.body],
    ...(scenario.delayMs ? { DELAY_MS: String(scenario.delayMs) } : {}),
    ...(target.tls ? { SHIM: ctx.shim, SSL_CLIENT_CERT: ctx.pki.clientCert, SSL_CLIENT_KEY: ctx.pki.clientKey } : {}),
    ...extraEnv,
  };
  const args = ['-c', WRAPPER, 'sh', '-t1', `-c${scenario.connections}`, `-d${seconds}s`, '--timeout', '10s',
    '-s', target.wrkScript?.(ctx) ?? ctx.postLua, url];
  const res = await runBounded('/bin/sh', args, { env, timeoutMs: (seconds + 30) * 1000 });
  const json = /^WRKJSON (.*)$/m.exec(res.stdout)?.[1];
  const shstat = /^SHSTAT (.*)$/m.exec(res.stdout)?.[1];
  return {
    code: res.code,
    stats: json ? JSON.parse(json) : null,
    wrkTicks: shstat ? parseShellChildTicks(shstat) : null,
    stderr: res.stderr.trim(),
  };
}

function invalidReason(w) {
  if (!w.stats) return `no WRKJSON line (exit ${w.code}): ${w.stderr.slice(0, 200)}`;
  const s = w.stats;
  const errs = ['err_connect', 'err_read', 'err_write', 'err_status', 'err_timeout'].filter((k) => s[k] > 0);
  if (errs.length) return `errors: ${errs.map((k) => `${k}=${s[k]}`).join(' ')}`;
  if (s.requests <= 0) return 'no requests completed';
  if (w.code !== 0) return `wrk exit ${w.code}`;
  return null;
}

/**
 * What every measured run reports alike: the load generator's figures (wrk's summary) and the
 * machine over the run (steal, other processes, kernel threads, irq), and whether it was noisy.
 */
function commonFigures({ target, scenario, reason, stats, elapsedS, m0, m1, others }) {
  const s = stats ?? {};
  const ok = (s.requests ?? 0) - (s.err_status ?? 0);
  const durationS = (s.duration_us ?? 0) / 1e6;
  const perCore = (ticks) => (elapsedS > 0 ? ticks / (elapsedS * CLK_TCK) : 0);
  const totalJiffies = m0 && m1 ? m1.total - m0.total : 0;
  const stealPct = totalJiffies > 0 ? (100 * (m1.steal - m0.steal)) / totalJiffies : 0;
  // this kernel accounts by ticks: irq/softirq ticks are also charged to whichever task was
  // interrupted, so they are reported for information only, never subtracted
  const otherCores = perCore(others.user);
  return {
    target: target.name,
    scenario: scenario.name,
    valid: reason === null,
    invalidReason: reason,
    requests: s.requests ?? 0,
    ok,
    durationS,
    rps: durationS > 0 ? ok / durationS : 0,
    p50us: s.p50_us, p90us: s.p90_us, p99us: s.p99_us, maxUs: s.max_us,
    uploadMBps: durationS > 0 ? (ok * (s.body_bytes ?? 0)) / durationS / 1e6 : 0,
    machine: {
      elapsedS, stealPct, otherCores,
      otherTop: others.top.map((o) => `${o.comm}[${o.pid}] ${perCore(o.ticks).toFixed(2)}`),
      kernelThreadCores: perCore(others.kernel),
      irqCores: m0 && m1 ? perCore(m1.irq - m0.irq) : 0,
      busyCores: m0 && m1 ? perCore(m1.busy - m0.busy) : 0,
    },
    noisy: stealPct > NOISE.maxStealPct || otherCores > NOISE.maxOtherCores,
  };
}

export async function measure(target, started, scenario, ctx, { duration, warmup }) {
  if (scenario.flood) return measureFlood(target, started, scenario, ctx, { duration, warmup });
  // A target's per-run load files (replguard-full: pre-signed requests) are written before
  // anything is measured, so that writing them is never counted as other load on the machine.
  const warmEnv = target.wrkEnv?.(ctx, scenario, { started, seconds: warmup }) ?? {};
  const runEnv = target.wrkEnv?.(ctx, scenario, { started, seconds: duration }) ?? {};
  try {
    return await measureWith(target, started, scenario, ctx, { duration, warmup, warmEnv, runEnv });
  } finally {
    for (const env of [warmEnv, runEnv]) if (env.REQUESTS) rmSync(env.REQUESTS, { force: true });
  }
}

async function measureWith(target, started, scenario, ctx, { duration, warmup, warmEnv, runEnv }) {
  const warm = await wrk(target, started, scenario, ctx, warmup, warmEnv);
  const warmInvalid = invalidReason(warm);

  const accepts0 = await upstreamAccepts(ctx);
  const rootPid = started.child.pid;
  const upstreamPid = ctx.upstream.child.pid;
  const t0 = process.hrtime.bigint();
  const p0 = snapshotProcesses();
  const main0 = mainThreadTicks(processTree(rootPid, p0));
  const m0 = machineStat();

  const w = await wrk(target, started, scenario, ctx, duration, runEnv);

  const p1 = snapshotProcesses();
  const main1 = mainThreadTicks(processTree(rootPid, p1));
  const m1 = machineStat();
  const elapsedS = Number(process.hrtime.bigint() - t0) / 1e9;
  const mem = treeMemory(rootPid);
  const tgt = [treeTicks(rootPid, p0), treeTicks(rootPid, p1)];
  const up = started.shared ? null : [treeTicks(upstreamPid, p0), treeTicks(upstreamPid, p1)];
  const ours = new Set([process.pid, ...tgt[0].pids, ...tgt[1].pids, ...(up ? [...up[0].pids, ...up[1].pids] : [])]);
  const others = othersTicks(p0, p1, ours);
  const accepts1 = await upstreamAccepts(ctx);

  const reason = warmInvalid ? `warm-up ${warmInvalid}` : invalidReason(w);
  const common = commonFigures({ target, scenario, reason, stats: w.stats, elapsedS, m0, m1, others });
  const { ok } = common;
  const usPerTick = 1e6 / CLK_TCK;
  const targetTicks = tgt[1].ticks - tgt[0].ticks;
  const upstreamTicks = up ? up[1].ticks - up[0].ticks : 0;
  return {
    ...common,
    targetTicks,
    cpuUsPerReq: ok > 0 ? (targetTicks * usPerTick) / ok : null,
    targetCores: targetTicks / (elapsedS * CLK_TCK),
    mainThreadShare: targetTicks > 0 ? (main1 - main0) / targetTicks : null,
    upstreamUsPerReq: started.shared ? null : (ok > 0 ? (upstreamTicks * usPerTick) / ok : null),
    wrkUsPerReq: ok > 0 && w.wrkTicks !== null ? (w.wrkTicks * usPerTick) / ok : null,
    // minus 1: our own status request after the run
    upstreamConnections: accepts0 !== null && accepts1 !== null ? accepts1 - accepts0 - 1 : null,
    rssKb: mem.rssKb,
    pssKb: mem.pssKb,
  };
}

/**
 * The flood scenario: the legitimate POP's fixed load (wrk, as fixed-1k) while
 * lib/flood-client.mjs floods the target (lib/flood.mjs). The flood starts before the warm-up
 * and its counters are read at the start and end of the measured run. A legitimate request
 * that fails does not make the run invalid: its success rate is the result. The run is invalid
 * when wrk or the flood client gave no report, or the target refused nothing of the flood.
 */
async function measureFlood(target, started, scenario, ctx, { duration, warmup }) {
  let prepareError = null;
  try { await target.floodPrepare?.(ctx, started); } catch (err) { prepareError = `flood preparation: ${err.message}`; }
  // written before anything is measured, like measure()'s (replguard-full: pre-signed requests)
  const warmEnv = target.wrkEnv?.(ctx, scenario, { started, seconds: warmup }) ?? {};
  const runEnv = target.wrkEnv?.(ctx, scenario, { started, seconds: duration }) ?? {};
  const flood = await startFlood(ctx, started, { ...scenario.flood, forgeJwt: started.floodJwt ?? genericForgedJwt() });
  let warm;
  let w;
  let f0;
  let f1;
  let p0;
  let p1;
  let m0;
  let m1;
  let t0;
  let main0 = 0;
  let main1 = 0;
  let floodError = null;
  try {
    warm = await wrk(target, started, scenario, ctx, warmup, warmEnv);
    f0 = await flood.mark();
    t0 = process.hrtime.bigint();
    p0 = snapshotProcesses();
    main0 = mainThreadTicks(processTree(started.child.pid, p0));
    m0 = machineStat();
    w = await wrk(target, started, scenario, ctx, duration, runEnv);
    p1 = snapshotProcesses();
    main1 = mainThreadTicks(processTree(started.child.pid, p1));
    m1 = machineStat();
    f1 = await flood.mark();
  } catch (err) {
    floodError = err.message;
  } finally {
    await flood.stop().catch(() => {});
    for (const env of [warmEnv, runEnv]) if (env.REQUESTS) rmSync(env.REQUESTS, { force: true });
  }
  const elapsedS = t0 ? Number(process.hrtime.bigint() - t0) / 1e9 : 0;
  const mem = treeMemory(started.child.pid);
  const window = f0 && f1 ? floodWindow(f0, f1) : null;
  const ticksOf = (pid) => (p0 && p1 ? treeTicks(pid, p1).ticks - treeTicks(pid, p0).ticks : 0);
  const targetTicks = ticksOf(started.child.pid);
  const floodTicks = ticksOf(flood.child.pid);
  const ours = p0 ? new Set([process.pid, ...treeTicks(started.child.pid, p1).pids, ...treeTicks(ctx.upstream.child.pid, p1).pids, ...treeTicks(flood.child.pid, p0).pids]) : new Set();
  const others = p0 ? othersTicks(p0, p1, ours) : { user: 0, kernel: 0, top: [] };
  const reason = prepareError ?? floodError ?? (!w?.stats ? `wrk: ${invalidReason(w ?? { stderr: 'not run' })}` : null) ??
    (!window ? 'no flood counters' : window.refused === 0 ? 'the flood client had nothing refused (did it run?)' : null);
  const common = commonFigures({ target, scenario, reason, stats: w?.stats, elapsedS, m0, m1, others });
  const { ok } = common;
  const s = w?.stats ?? {};
  const perCore = (ticks) => (elapsedS > 0 ? ticks / (elapsedS * CLK_TCK) : 0);
  return {
    ...common,
    legitSuccess: legitSuccess(w?.stats),
    legitErrors: w?.stats ? { status: s.err_status, connect: s.err_connect, read: s.err_read, write: s.err_write, timeout: s.err_timeout } : null,
    warmupLegitSuccess: legitSuccess(warm?.stats),
    flood: window,
    floodRefusedPerS: window?.refusedPerS ?? null,
    targetTicks,
    // the target's CPU covers the legitimate requests and the flood together: per request it means little
    cpuUsPerReq: ok > 0 ? (targetTicks * (1e6 / CLK_TCK)) / ok : null,
    targetCores: perCore(targetTicks),
    mainThreadShare: targetTicks > 0 ? (main1 - main0) / targetTicks : null,
    floodClientCores: perCore(floodTicks),
    wrkUsPerReq: ok > 0 && w?.wrkTicks != null ? (w.wrkTicks * (1e6 / CLK_TCK)) / ok : null,
    rssKb: mem.rssKb,
    pssKb: mem.pssKb,
  };
}
