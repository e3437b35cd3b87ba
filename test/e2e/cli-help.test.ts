// Every command answers --help and -h with its usage, options, defaults and an example, exits 0
// and starts nothing (no config read, no file written, no port bound); --version; an unknown
// option names the closest known one.
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { renderHelp } from '../../src/cli/help.ts';
import { COMMANDS } from '../../src/cli/usage-table.ts';
import { runCli } from '../helpers/guard.ts';

t.test('each command: --help and -h print the table\'s help and exit 0', async (t) => {
  for (const c of COMMANDS) {
    for (const flag of ['--help', '-h']) {
      const r = await runCli([c.name, flag]);
      t.equal(r.code, 0, `${c.name} ${flag}: exit 0 (${r.stderr})`);
      t.equal(r.stdout, renderHelp(c), `${c.name} ${flag}: usage, options, defaults, example`);
    }
  }
  const make = COMMANDS.find((c) => c.name === 'make-jwt')!;
  t.match(renderHelp(make), /--ttl DURATION +lifetime of the token \(default 10m\)/, 'defaults are shown');
  t.match(renderHelp(make), /^example:\n {2}replguard make-jwt /m, 'an example is shown');
});

t.test('--help starts nothing: no config read, no file written, no demo started', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'replguard-help-'));
  const cases: Array<[string[], string]> = [
    [['serve', '-c', join(dir, 'missing.yaml'), '--help'], 'serve does not read the config'],
    [['check-config', '--help', '-c', join(dir, 'missing.yaml')], 'check-config does not read the config'],
    [['gen-token', '--out', join(dir, 'token'), '--help'], 'gen-token writes no secret'],
    [['dev-pki', '--out', join(dir, 'pki'), '-h'], 'dev-pki writes no PKI'],
    [['demo', '--help'], 'demo starts nothing (it would run until a signal)'],
  ];
  for (const [args, name] of cases) {
    const r = await runCli(args);
    t.equal(r.code, 0, name);
    t.match(r.stdout, /^usage: replguard /, name);
  }
  t.notOk(existsSync(join(dir, 'token')), 'no token file');
  t.notOk(existsSync(join(dir, 'pki')), 'no pki folder');
});

t.test('replguard --help lists every command; --version prints the version', async (t) => {
  const r = await runCli(['--help']);
  t.equal(r.code, 0);
  for (const c of COMMANDS) t.match(r.stdout, new RegExp(`^  ${c.name} +${c.summary.slice(0, 20).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'm'), c.name);
  const help = await runCli(['help', 'sign']);
  t.equal(help.code, 0);
  t.equal(help.stdout, renderHelp(COMMANDS.find((c) => c.name === 'sign')!));
  const v = await runCli(['--version']);
  t.equal(v.code, 0);
  t.match(v.stdout, /^replguard \d+\.\d+\.\d+ \((node|deno) [\d.]+\)\n$/);
});

t.test('an unknown option or command names the closest known one, exit 2', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['serve', '--confg', 'x.yaml'], /unknown option --confg; did you mean --config\?/],
    [['check-config', '-c', 'x.yaml', '--prnit'], /unknown option --prnit; did you mean --print\?/],
    [['make-jwt', '--audiance', 'zurich-01'], /unknown option --audiance; did you mean --audience\?/],
    [['gen-token', '--zzzzzzzz'], /unknown option --zzzzzzzz; known options: --out, --not-after, --force/],
    [['chek-config'], /unknown command "chek-config"; did you mean "check-config"\?/],
    [['serve'], /--config is required \(replguard serve --help\)/],
    [['version', 'extra'], /unexpected argument "extra"/],
  ];
  for (const [args, expected] of cases) {
    const r = await runCli(args);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.stderr, expected, args.join(' '));
  }
});
