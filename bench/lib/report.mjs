// Aggregation (medians with min–max over repetitions; ratios to nginx paired within a repetition)
// and the RESULTS.md / results.json writers.
// No imports: test/bench/report.test.ts loads this module alone.

/** Thresholds for flagging a run as noisy (measured over the run on the whole machine; lib/load.mjs). */
export const NOISE = { maxStealPct: 2, maxOtherCores: 0.15 };

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function summary(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x));
  if (!v.length) return null;
  return { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length };
}

/**
 * For each valid run of `mine`, its `key` divided by the same key of `ref`'s valid run in the
 * same repetition (ratios are paired within a repetition, never across).
 */
function pairedRatios(mine, refRuns, key) {
  const byRep = new Map(refRuns.filter((r) => r.valid).map((r) => [r.rep, r]));
  const out = [];
  for (const r of mine) {
    const ref = byRep.get(r.rep);
    const a = r[key];
    const b = ref?.[key];
    if (typeof a === 'number' && typeof b === 'number' && b > 0) out.push(a / b);
  }
  return out;
}

/** The flood scenario's figures of one target: per kind, refused per second and every outcome (summed over runs). */
function floodFigures(valid) {
  const withFlood = valid.filter((r) => r.flood);
  if (!withFlood.length) return null;
  const kinds = {};
  for (const r of withFlood) {
    for (const [name, k] of Object.entries(r.flood.kinds)) {
      const acc = kinds[name] ?? { refusedPerS: [], outcomes: {}, letThrough: 0, skipped: 0 };
      acc.refusedPerS.push(k.refusedPerS);
      for (const [o, n] of Object.entries(k.outcomes)) acc.outcomes[o] = (acc.outcomes[o] ?? 0) + n;
      acc.letThrough += k.letThrough;
      acc.skipped += k.skipped;
      kinds[name] = acc;
    }
  }
  return {
    kinds: Object.fromEntries(Object.entries(kinds).map(([n, k]) => [n, { ...k, refusedPerS: summary(k.refusedPerS) }])),
    refusedPerS: summary(withFlood.map((r) => r.flood.refusedPerS)),
    letThrough: withFlood.reduce((x, r) => x + r.flood.letThrough, 0),
  };
}

/**
 * Medians (min–max) per scenario and target; ratios to `reference` (nginx) and to `floor`
 * (undici-min) paired within a repetition.
 */
export function aggregate(runs, scenarios, targetNames, reference, floor = null) {
  const out = {};
  for (const sc of scenarios) {
    out[sc.name] = {};
    const of = (name) => runs.filter((r) => r.scenario === sc.name && r.target === name);
    for (const name of targetNames) {
      const mine = of(name);
      if (!mine.length) continue;
      const valid = mine.filter((r) => r.valid);
      const refRuns = of(reference);
      const floorRuns = floor ? of(floor) : [];
      const pick = (k) => summary(valid.map((r) => r[k]));
      out[sc.name][name] = {
        runs: mine.length,
        valid: valid.length,
        noisy: valid.filter((r) => r.noisy).length,
        invalid: mine.filter((r) => !r.valid).map((r) => `rep ${r.rep}: ${r.invalidReason}`),
        cpuUsPerReq: pick('cpuUsPerReq'),
        cpuRatio: summary(pairedRatios(valid, refRuns, 'cpuUsPerReq')),
        cpuFloorRatio: summary(pairedRatios(valid, floorRuns, 'cpuUsPerReq')),
        rps: pick('rps'),
        rpsRatio: summary(pairedRatios(valid, refRuns, 'rps')),
        p50us: pick('p50us'),
        p99us: pick('p99us'),
        p99Ratio: summary(pairedRatios(valid, refRuns, 'p99us')),
        uploadMBps: pick('uploadMBps'),
        rssMiB: summary(valid.map((r) => r.rssKb / 1024)),
        rssFloorRatio: summary(pairedRatios(valid, floorRuns, 'rssKb')),
        pssMiB: summary(valid.map((r) => r.pssKb / 1024)),
        targetCores: pick('targetCores'),
        mainThreadShare: pick('mainThreadShare'),
        upstreamUsPerReq: pick('upstreamUsPerReq'),
        wrkUsPerReq: pick('wrkUsPerReq'),
        upstreamConnections: pick('upstreamConnections'),
        legitSuccess: pick('legitSuccess'),
        floodClientCores: pick('floodClientCores'),
        flood: floodFigures(valid),
        stealPct: summary(valid.map((r) => r.machine.stealPct)),
        otherCores: summary(valid.map((r) => r.machine.otherCores)),
        irqCores: summary(valid.map((r) => r.machine.irqCores)),
      };
    }
  }
  return out;
}

const fmt = (x, d = 0) => (x === null || x === undefined ? '–' : x.toFixed(d));
function cell(s, d = 0) {
  if (!s) return '–';
  if (s.n === 1) return fmt(s.median, d);
  return `${fmt(s.median, d)} (${fmt(s.min, d)}–${fmt(s.max, d)})`;
}

/** The goals of issue 10 (historical: replaced by issue 22's), checked where replguard was measured. */
export function goalsIssue10(agg) {
  const g = (scenario, target, key, op, bound, text) => {
    const v = agg[scenario]?.[target]?.[key]?.median;
    if (v === undefined) return { goal: text, status: 'not measured' };
    return { goal: text, value: v, status: (op === '<=' ? v <= bound : v >= bound) ? 'met' : 'NOT met' };
  };
  return [
    g('fixed-1k', 'replguard', 'cpuRatio', '<=', 1.5, 'replguard mTLS-only CPU/request at 1 KiB equal load ≤ 1.5x nginx'),
    g('fixed-1k', 'replguard-full', 'cpuRatio', '<=', 2, 'replguard full pipeline CPU/request at 1 KiB equal load ≤ 2x nginx'),
    g('sat-1k', 'replguard', 'rpsRatio', '>=', 0.7, 'replguard saturation req/s ≥ 0.7x nginx'),
    g('sat-1m', 'replguard', 'cpuRatio', '<=', 1.2, 'replguard 1 MiB CPU/request ≤ 1.2x nginx'),
  ];
}

/**
 * The goals of issue 22, as ratios within a repetition: CPU to the undici-min floor, p99 to
 * nginx, RSS to the floor; idle RSS in MiB; under the flood, every legitimate request served.
 * A goal is met when the median meets its bound (the flood's success: every run's).
 * `idle`: [{ target, rssKb }] measured after start, before any request.
 */
export function goals22(agg, idle = []) {
  const out = [];
  const g = (scenario, target, key, bound, text, { unit = 'x', pick = 'median' } = {}) => {
    const s = agg[scenario]?.[target]?.[key];
    if (!s) { out.push({ goal: text, target, scenario, status: 'not measured' }); return; }
    const v = s[pick];
    out.push({ goal: text, target, scenario, value: v, range: s, unit, bound, status: v <= bound ? 'met' : 'NOT met' });
  };
  for (const t of ['replguard', 'replguard-full']) {
    g('fixed-1k', t, 'cpuFloorRatio', t === 'replguard' ? 1.3 : 1.5, `fixed-1k CPU/request ≤ ${t === 'replguard' ? '1.3' : '1.5'}x undici-min`);
  }
  g('sat-1m', 'replguard-full', 'cpuFloorRatio', 1.3, 'sat-1m CPU/request ≤ 1.3x undici-min');
  for (const t of ['replguard', 'replguard-full']) g('fixed-1k', t, 'p99Ratio', 2, 'fixed-1k p99 ≤ 2x nginx');
  for (const t of ['replguard', 'replguard-full']) {
    const m = idle.find((i) => i.target === t);
    const text = 'idle RSS (Node, after start, before any request) ≤ 60 MiB';
    if (!m) out.push({ goal: text, target: t, scenario: 'idle', status: 'not measured' });
    else out.push({ goal: text, target: t, scenario: 'idle', value: m.rssKb / 1024, unit: 'MiB', bound: 60, status: m.rssKb / 1024 <= 60 ? 'met' : 'NOT met' });
  }
  for (const t of ['replguard', 'replguard-full']) g('sat-1m', t, 'rssFloorRatio', 1.3, 'RSS after sat-1m ≤ 1.3x undici-min');
  for (const t of ['replguard', 'replguard-full']) {
    const s = agg.flood?.[t]?.legitSuccess;
    const text = 'flood: 100 % of the legitimate POP\'s requests succeed (every run)';
    if (!s) out.push({ goal: text, target: t, scenario: 'flood', status: 'not measured' });
    else out.push({ goal: text, target: t, scenario: 'flood', value: 100 * s.min, unit: '%', bound: 100, status: s.min >= 1 ? 'met' : 'NOT met' });
    g('flood', t, 'p99Ratio', 2, 'flood: legitimate p99 ≤ 2x nginx\'s under the same flood');
  }
  return out;
}

function goalValue(r) {
  if (r.value === undefined) return '–';
  const d = r.unit === 'x' ? 2 : 1;
  const range = r.range && r.range.n > 1 ? ` (${fmt(r.range.min, d)}–${fmt(r.range.max, d)})` : '';
  return r.unit === 'x' ? `${fmt(r.value, d)}x${range}` : `${fmt(r.value, d)} ${r.unit}${range}`;
}

/** The flood scenario's table (legitimate POP and flood side by side) and what each kind meets. */
export function renderFlood(sc, targets, agg, meaning = {}) {
  const L = [];
  L.push(`## ${sc.name}: ${sc.about}`, '');
  const kinds = [...new Set(targets.flatMap((t) => Object.keys(agg[sc.name]?.[t.name]?.flood?.kinds ?? {})))];
  L.push(`| target | legit success % | legit req/s | legit p50 µs | legit p99 µs | p99 × nginx | flood refused /s | ${kinds.map((k) => `${k} refused /s (outcomes, all runs)`).join(' | ')} | flood let through | target cores | main-thread share | flood client cores | RSS MiB | valid/runs | noisy |`);
  L.push(`|---|---|---|---|---|---|---|${kinds.map(() => '---|').join('')}---|---|---|---|---|---|---|`);
  for (const t of targets) {
    const a = agg[sc.name]?.[t.name];
    if (!a) continue;
    const pct = a.legitSuccess ? { ...a.legitSuccess, median: 100 * a.legitSuccess.median, min: 100 * a.legitSuccess.min, max: 100 * a.legitSuccess.max } : null;
    const kindCells = kinds.map((k) => {
      const f = a.flood?.kinds[k];
      if (!f) return '–';
      const outcomes = Object.entries(f.outcomes).sort((x, y) => y[1] - x[1]).map(([o, n]) => `${o} ${n}`).join(', ');
      return `${cell(f.refusedPerS)} (${outcomes || '–'}${f.skipped ? `; ${f.skipped} not sent: cap on connections in flight` : ''})`;
    });
    L.push(`| ${t.name} | ${cell(pct, 2)} | ${cell(a.rps)} | ${cell(a.p50us)} | ${cell(a.p99us)} | ${cell(a.p99Ratio, 2)} | ${cell(a.flood?.refusedPerS)} | ${kindCells.join(' | ')} | ${a.flood ? a.flood.letThrough : '–'} | ${cell(a.targetCores, 2)} | ${cell(a.mainThreadShare, 2)} | ${cell(a.floodClientCores, 2)} | ${cell(a.rssMiB, 1)} | ${a.valid}/${a.runs} | ${a.noisy} |`);
  }
  L.push('');
  L.push('- **legit success %**: the legitimate POP\'s 2xx answers over every request it sent (non-2xx answers, socket errors and timeouts all count as failures). A failed legitimate request does not make a flood run invalid: it is the result.');
  L.push('- **flood refused /s**: flood attempts the target refused (an HTTP error, a TLS alert, a reset or close) per second of the measured run; attempts left unanswered after 5 s are not counted. Every attempt is a new TCP connection and a full TLS 1.3 handshake (never resumed). "not sent" counts attempts the generator skipped because its connections in flight were all busy: the target answered slower than the offered rate.');
  L.push('- **target cores**: the target absorbing the flood and serving the POP together; its CPU per legitimate request means little here. **flood client cores**: the generator\'s own CPU.');
  for (const [k, m] of Object.entries(meaning)) L.push(`- **${k}**: ${m}`);
  L.push('');
  return L;
}

export function renderMarkdown({ meta, scenarios, targets, unavailable, preflights, agg, runs, idle = [], floodMeaning = {} }) {
  const L = [];
  L.push('# replguard benchmark results', '');
  L.push(`Generated by \`bench/run.mjs\` on ${meta.date}. Do not edit by hand: rerun the command below.`, '');
  L.push('```', meta.command, '```', '');
  L.push('## Machine', '');
  L.push(`- CPU: ${meta.cpuModel}, \`nproc\` = ${meta.nproc}; kernel ${meta.kernel}; load average before the run ${meta.loadavg}`);
  L.push(`- Node ${meta.versions.node}, ${meta.versions.nginx}, ${meta.versions.haproxy}, caddy ${meta.versions.caddy ?? '?'}, ${meta.versions.wrk}, ${meta.versions.openssl}`);
  if (meta.nodeArgs) L.push(`- Node targets ran with extra flags: \`${meta.nodeArgs}\``);
  L.push(`- Repetitions ${meta.reps}, ${meta.duration} s each (a noisy run is repeated up to ${meta.retryNoisy} times) after a ${meta.warmup} s warm-up (separate wrk process), scenarios interleaved across targets (target order rotated per repetition)`);
  L.push('');
  L.push('## How to read this', '');
  L.push('- **CPU µs/req** (the headline): the target\'s own utime+stime from `/proc/<pid>/stat`, summed over its process tree and all threads, over the measured run, divided by successful requests. The upstream and wrk are measured apart and never counted in a target.');
  L.push('- **× nginx**: the ratio to nginx in the same repetition and scenario, then the median (min–max) of those ratios. **× undici-min**: the same, to the runtime\'s own forwarding floor (issue 22\'s goals).');
  L.push('- Cells are the median (min–max) over valid repetitions. A run with any non-2xx response or any socket error or timeout is invalid and left out (listed below).');
  L.push(`- **noisy**: runs where steal exceeded ${NOISE.maxStealPct}% or CPU used by processes other than target, upstream and wrk exceeded ${NOISE.maxOtherCores} cores over the run.`);
  L.push('- **irq cores**: machine-wide irq+softirq time over the run (mostly loopback TCP processing), for information. This kernel accounts CPU by ticks, so softirq work is charged to whichever of our processes it interrupted; work deferred to `ksoftirqd` is in no target ("kthread cores" in results.json). Both grow with bytes moved.');
  L.push('- **main-thread share**: the part of the target\'s CPU spent on its processes\' main threads (the rest: helper threads, for Node the libuv pool, e.g. asynchronous file writes, and V8\'s GC helpers).');
  L.push('- **upstream conns opened**: TCP connections the upstream accepted during the measured run (nginx `stub_status`); with upstream keep-alive it stays near the number of client connections, far below the request count.');
  L.push('- **RSS/PSS** from `/proc/<pid>/smaps_rollup` summed over the process tree, right after the run.');
  L.push('- **MB/s** is request-body upload throughput (successful requests × body size / duration).');
  L.push('- Each measured run opens fresh connections (one full mTLS handshake per connection), amortised over the run; keep-alive is long enough that nothing re-handshakes within a run.');
  L.push('');
  L.push('## Targets', '');
  for (const t of targets) L.push(`- \`${t.name}\`: ${t.about}`);
  for (const u of unavailable) L.push(`- \`${u.name}\`: **unavailable — not measured**: ${u.reason}`);
  L.push('- Upstream (all targets): nginx 1 worker that reads the whole body (mirror with `mirror_request_body on`), then answers `200 {"ok":true}`; plain HTTP on loopback; access log off.');
  L.push('');
  L.push('## Goals (issue 22)', '');
  L.push('Ratios are paired within a repetition (a target\'s figure over undici-min\'s, or nginx\'s, in the same repetition and scenario), then the median (min–max) over repetitions.', '');
  L.push('| goal | target | measured | bound | status |');
  L.push('|---|---|---|---|---|');
  for (const r of goals22(agg, idle)) L.push(`| ${r.goal} | ${r.target} | ${goalValue(r)} | ${r.bound === undefined ? '–' : `${r.bound}${r.unit === 'x' ? 'x' : ` ${r.unit}`}`} | ${r.status} |`);
  L.push('');
  if (idle.length) {
    L.push('## Idle memory (after start, before any request)', '');
    L.push('| target | RSS MiB | PSS MiB |');
    L.push('|---|---|---|');
    for (const i of idle) L.push(`| ${i.target} | ${fmt(i.rssKb / 1024, 1)} | ${fmt(i.pssKb / 1024, 1)} |`);
    L.push('');
  }
  for (const sc of scenarios) {
    if (sc.flood) { L.push(...renderFlood(sc, targets, agg, floodMeaning)); continue; }
    L.push(`## ${sc.name}: ${sc.about}`, '');
    L.push('| target | CPU µs/req | × nginx | × undici-min | req/s | req/s × nginx | p50 µs | p99 µs | MB/s | target cores | main-thread share | RSS MiB | PSS MiB | upstream µs/req | upstream conns opened | wrk µs/req | irq cores | valid/runs | noisy |');
    L.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const t of targets) {
      const a = agg[sc.name]?.[t.name];
      if (!a) continue;
      L.push(`| ${t.name} | ${cell(a.cpuUsPerReq, 1)} | ${cell(a.cpuRatio, 2)} | ${cell(a.cpuFloorRatio, 2)} | ${cell(a.rps)} | ${cell(a.rpsRatio, 2)} | ${cell(a.p50us)} | ${cell(a.p99us)} | ${cell(a.uploadMBps, 1)} | ${cell(a.targetCores, 2)} | ${cell(a.mainThreadShare, 2)} | ${cell(a.rssMiB, 1)} | ${cell(a.pssMiB, 1)} | ${cell(a.upstreamUsPerReq, 1)} | ${cell(a.upstreamConnections)} | ${cell(a.wrkUsPerReq, 1)} | ${cell(a.irqCores, 2)} | ${a.valid}/${a.runs} | ${a.noisy} |`);
    }
    L.push('');
  }
  L.push('## Issue 10 goals (historical: replaced by issue 22\'s above, kept for comparison)', '');
  for (const g of goalsIssue10(agg)) L.push(`- ${g.goal}: ${g.status}${g.value !== undefined ? ` (median ${g.value.toFixed(2)})` : ''}`);
  L.push('');
  L.push('## Preflight', '');
  for (const p of preflights) {
    L.push(`- \`${p.target}\`: ${p.pass ? 'pass' : '**FAIL — not measured**'} — ${p.checks.map((c) => `${c.check}: ${c.pass ? 'ok' : 'FAIL'} (${typeof c.got === 'string' ? c.got : JSON.stringify(c.got)})`).join('; ')}`);
  }
  L.push('');
  const superseded = runs.filter((r) => r.superseded);
  if (superseded.length) L.push(`${superseded.length} noisy run(s) were repeated (up to ${meta.retryNoisy} times each); the repeated attempts are in results.json with \`superseded: true\` and are not in the medians.`, '');
  const invalid = runs.filter((r) => !r.valid);
  L.push('## Invalid and noisy runs', '');
  if (!invalid.length) L.push('- No invalid runs.');
  for (const r of invalid) L.push(`- invalid: rep ${r.rep} ${r.scenario} ${r.target}: ${r.invalidReason}`);
  const noisy = runs.filter((r) => r.noisy && !r.superseded);
  if (!noisy.length) L.push('- No noisy runs.');
  for (const r of noisy) L.push(`- noisy: rep ${r.rep} ${r.scenario} ${r.target}: steal ${r.machine.stealPct.toFixed(2)}%, other processes ${r.machine.otherCores.toFixed(2)} cores (top: ${r.machine.otherTop.join(', ') || '–'})`);
  L.push('');
  if (meta.notes?.length) {
    L.push('## Notes', '');
    for (const n of meta.notes) L.push(`- ${n}`);
    L.push('');
  }
  return L.join('\n');
}
