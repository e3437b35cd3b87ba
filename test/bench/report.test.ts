// bench/lib/report.mjs: ratios paired within a repetition (to nginx and to the undici-min
// floor), issue 22's goals from them, and the flood table in RESULTS.md.
import t from 'tap';
import { aggregate, goals22, renderFlood, renderMarkdown } from '../../bench/lib/report.mjs';

const machine = { stealPct: 0, otherCores: 0, irqCores: 0 };
type Run = Record<string, unknown>;
const run = (target: string, scenario: string, rep: number, extra: Run): Run => ({
  target, scenario, rep, valid: true, noisy: false, machine, rssKb: 100 * 1024, pssKb: 50 * 1024, ...extra,
});
const scenarios = [{ name: 'fixed-1k' }, { name: 'sat-1m' }, { name: 'flood', flood: {}, about: 'flood' }];
const names = ['nginx', 'undici-min', 'replguard', 'replguard-full'];

t.test('ratios pair runs of the same repetition, then take the median', async (t) => {
  const runs = [
    run('nginx', 'fixed-1k', 1, { cpuUsPerReq: 60, p99us: 2000 }),
    run('nginx', 'fixed-1k', 2, { cpuUsPerReq: 70, p99us: 4000 }),
    run('undici-min', 'fixed-1k', 1, { cpuUsPerReq: 200, p99us: 5000 }),
    run('undici-min', 'fixed-1k', 2, { cpuUsPerReq: 100, p99us: 5000 }),
    // rep 1: 1.2x the floor; rep 2: 3x. Unpaired medians would give 250/150 = 1.67x.
    run('replguard', 'fixed-1k', 1, { cpuUsPerReq: 240, p99us: 3000 }),
    run('replguard', 'fixed-1k', 2, { cpuUsPerReq: 300, p99us: 12000 }),
  ];
  const agg = aggregate(runs, scenarios, names, 'nginx', 'undici-min');
  const a = agg['fixed-1k'].replguard;
  t.equal(a.cpuFloorRatio.min, 1.2);
  t.equal(a.cpuFloorRatio.max, 3);
  t.equal(a.cpuFloorRatio.median, 2.1);
  t.same([a.p99Ratio.min, a.p99Ratio.max], [1.5, 3]);
  t.equal(agg['fixed-1k']['undici-min'].cpuFloorRatio.median, 1);
});

t.test('an invalid run of the floor leaves its repetition without a ratio', async (t) => {
  const runs = [
    run('undici-min', 'fixed-1k', 1, { cpuUsPerReq: 200, valid: false }),
    run('undici-min', 'fixed-1k', 2, { cpuUsPerReq: 100 }),
    run('replguard', 'fixed-1k', 1, { cpuUsPerReq: 240 }),
    run('replguard', 'fixed-1k', 2, { cpuUsPerReq: 110 }),
  ];
  const a = aggregate(runs, scenarios, names, 'nginx', 'undici-min')['fixed-1k'].replguard;
  t.equal(a.cpuFloorRatio.n, 1);
  t.equal(a.cpuFloorRatio.median, 1.1);
});

t.test("issue 22's goals: met and not met against their bounds, not measured when absent", async (t) => {
  const runs = [
    run('undici-min', 'fixed-1k', 1, { cpuUsPerReq: 200 }),
    run('replguard', 'fixed-1k', 1, { cpuUsPerReq: 250 }), // 1.25x: within 1.3x
    run('replguard-full', 'fixed-1k', 1, { cpuUsPerReq: 320 }), // 1.6x: over 1.5x
    run('undici-min', 'sat-1m', 1, { cpuUsPerReq: 2500, rssKb: 100 * 1024 }),
    run('replguard-full', 'sat-1m', 1, { cpuUsPerReq: 3000, rssKb: 140 * 1024 }),
    run('nginx', 'flood', 1, { p99us: 4000, legitSuccess: 1 }),
    run('replguard', 'flood', 1, { p99us: 7000, legitSuccess: 1 }),
    run('replguard', 'flood', 2, { p99us: 7000, legitSuccess: 0.999 }),
  ];
  const agg = aggregate(runs, scenarios, names, 'nginx', 'undici-min');
  const goals = goals22(agg, [{ target: 'replguard', rssKb: 58 * 1024 }, { target: 'replguard-full', rssKb: 70 * 1024 }]);
  const find = (target: string, goal: RegExp) => goals.find((g: { target: string; goal: string }) => g.target === target && goal.test(g.goal));
  t.equal(find('replguard', /^fixed-1k CPU/).status, 'met');
  t.equal(find('replguard-full', /^fixed-1k CPU/).status, 'NOT met');
  t.equal(find('replguard-full', /^sat-1m CPU/).status, 'met');
  t.equal(find('replguard-full', /^RSS after sat-1m/).status, 'NOT met', '1.4x the floor');
  t.equal(find('replguard', /^RSS after sat-1m/).status, 'not measured');
  t.equal(find('replguard', /^idle RSS/).status, 'met');
  t.equal(find('replguard-full', /^idle RSS/).status, 'NOT met');
  t.equal(find('replguard', /^fixed-1k p99/).status, 'not measured', 'no nginx run in fixed-1k');
  t.equal(find('replguard', /^flood: 100/).status, 'NOT met', 'one run below 100 % fails the goal');
  t.equal(find('replguard', /^flood: legitimate p99/).status, 'met', '1.75x nginx');
  t.equal(find('replguard-full', /^flood: 100/).status, 'not measured');
});

t.test('the flood table shows each kind with its outcomes and what got through', async (t) => {
  const flood = (refusedPerS: number, letThrough: number) => ({
    refusedPerS: refusedPerS * 3,
    letThrough,
    kinds: {
      'no-cert': { refusedPerS, refused: refusedPerS * 10, letThrough: 0, skipped: 0, outcomes: { 'tls-alert': refusedPerS * 10 } },
      'banned-address': { refusedPerS, refused: refusedPerS * 10, letThrough, skipped: 2, outcomes: { 'reset-in-handshake': refusedPerS * 10, 'http-200': letThrough } },
    },
  });
  const runs = [
    run('nginx', 'flood', 1, { p99us: 4000, p50us: 1000, rps: 1800, legitSuccess: 1, flood: flood(50, 0), targetCores: 0.3, floodClientCores: 0.4 }),
    run('replguard', 'flood', 1, { p99us: 6000, p50us: 1500, rps: 1790, legitSuccess: 0.995, flood: flood(40, 3), targetCores: 0.6, floodClientCores: 0.4 }),
  ];
  const agg = aggregate(runs, scenarios, names, 'nginx', 'undici-min');
  const lines = renderFlood(scenarios[2], [{ name: 'nginx' }, { name: 'replguard' }], agg, { 'no-cert': 'all refuse it' });
  const table = lines.filter((l: string) => l.startsWith('|'));
  const cols = (l: string) => l.split('|').length;
  t.ok(table.every((l: string) => cols(l) === cols(table[0])), 'every row has the header\'s columns');
  const rg = table.find((l: string) => l.startsWith('| replguard '));
  t.match(rg, /\| 99\.50 \| 1790 \| 1500 \| 6000 \| 1\.50 \| 120 \|/);
  t.match(rg, /40 \(reset-in-handshake 400, http-200 3; 2 not sent: cap on connections in flight\)/);
  t.match(rg, /\| 3 \| 0\.60 \| – \| 0\.40 \|/, 'flood let through, then target cores, main-thread share (none here) and client cores');
  t.ok(lines.includes('- **no-cert**: all refuse it'));
});

t.test("RESULTS.md: issue 22's goals first, idle memory, a table per scenario, issue 10's goals marked historical", async (t) => {
  const runs = [
    run('nginx', 'fixed-1k', 1, { cpuUsPerReq: 60, p99us: 2000, rps: 1800 }),
    run('undici-min', 'fixed-1k', 1, { cpuUsPerReq: 200, p99us: 5000, rps: 1800 }),
    run('replguard', 'fixed-1k', 1, { cpuUsPerReq: 240, p99us: 3000, rps: 1800 }),
    run('replguard', 'fixed-1k', 2, { valid: false, invalidReason: 'errors: err_status=3' }),
    run('nginx', 'flood', 1, { p99us: 4000, legitSuccess: 1, flood: { refusedPerS: 150, letThrough: 0, kinds: {} } }),
  ];
  const targets = [{ name: 'nginx', about: 'nginx about' }, { name: 'undici-min', about: 'floor' }, { name: 'replguard', about: 'rg' }];
  const agg = aggregate(runs, scenarios, targets.map((x) => x.name), 'nginx', 'undici-min');
  const md = renderMarkdown({
    meta: { date: 'D', command: 'node bench/run.mjs', cpuModel: 'cpu', nproc: 2, kernel: 'k', loadavg: '0', versions: { node: 'v20', nginx: 'n', haproxy: 'h', caddy: 'c', wrk: 'w', openssl: 'o' }, reps: 2, duration: 10, warmup: 1, retryNoisy: 2, notes: ['a note'] },
    scenarios: [{ name: 'fixed-1k', about: 'fixed' }, { name: 'flood', about: 'flood', flood: {} }],
    targets,
    unavailable: [{ name: 'caddy', reason: 'caddy is not on the PATH' }],
    preflights: [{ target: 'nginx', pass: true, checks: [{ check: '2xx', pass: true, got: { status: 200 } }] }],
    agg,
    runs,
    idle: [{ target: 'replguard', rssKb: 61 * 1024, pssKb: 40 * 1024 }],
  });
  const at = (h: string) => md.indexOf(h);
  t.ok(at('## Goals (issue 22)') > 0 && at('## Goals (issue 22)') < at('## Idle memory'), 'issue 22 goals before the idle memory');
  t.match(md, /\| fixed-1k CPU\/request ≤ 1\.3x undici-min \| replguard \| 1\.20x \| 1\.3x \| met \|/);
  t.match(md, /\| idle RSS .* \| replguard \| 61\.0 MiB \| 60 MiB \| NOT met \|/);
  t.match(md, /\| replguard \| 240\.0 \| 4\.00 \| 1\.20 \| 1800 \|/, 'fixed-1k row: CPU, x nginx, x undici-min, req/s');
  t.ok(at('## flood: flood') > at('## fixed-1k: fixed'), 'the flood table follows the other scenarios');
  t.ok(at('## Issue 10 goals (historical') > at('## flood: flood'), 'issue 10 goals after the tables, marked historical');
  t.match(md, /caddy`: \*\*unavailable — not measured\*\*: caddy is not on the PATH/);
  t.match(md, /invalid: rep 2 fixed-1k replguard: errors: err_status=3/);
  t.match(md, /- a note/);
});
