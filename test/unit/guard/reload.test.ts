// The guard's reload coordination in-process: which keys need a restart, a config reload that
// builds a new pipeline while a running request keeps the old one until it is done, and the
// refusals (invalid file, TLS material that fails after the file itself validated).
import { memorySharedState } from '../../helpers/shared-state.ts';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import t from 'tap';
import YAML from 'yaml';
import { generateToken } from '../../../src/cli/gen-token.ts';
import { loadConfig, parseConfig } from '../../../src/guard/config.ts';
import { createOperationalLog } from '../../../src/log/operational.ts';
import type { ReloadReport } from '../../../src/reload/source.ts';
import { createLiveGuard, keepRestartOnly, restartOnlyChanges } from '../../../src/guard/reload.ts';
import { baseConfig } from '../../helpers/guard.ts';
import { makePki } from '../../helpers/pki.ts';

const pki = makePki([]);
const dir = mkdtempSync(join(tmpdir(), 'replguard-live-'));
const tokenFile = join(dir, 'calgary.token');
const writeToken = () => writeFileSync(tokenFile, generateToken(), { mode: 0o600 });
writeToken();
const CALGARY = { id: 'calgary-01', cert: { cn: 'calgary-01' }, token_files: [tokenFile] };
const denverToken = join(dir, 'denver.token');
writeFileSync(denverToken, generateToken(), { mode: 0o600 });
const DENVER = { id: 'denver-02', cert: { cn: 'denver-02' }, token_files: [denverToken] };
const file = join(dir, 'replguard.yaml');
const configText = (extra: Record<string, unknown> = {}) => YAML.stringify(baseConfig(pki, 'http://127.0.0.1:9', {
  auth: { methods: ['mtls', 'bearer'], reload_interval: '1h' },
  peers: [CALGARY],
  ...extra,
}));

function memoryLog() {
  const lines: Array<Record<string, any>> = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, any>);
      done();
    },
  });
  return { log: createOperationalLog('info', stream as never), lines };
}

t.test('restart-only keys: reported per leaf path, kept', async (t) => {
  const a = parseConfig(configText(), file).config;
  const b = parseConfig(configText({ listen: { host: '127.0.0.1', port: 8444 }, pop_id: 'zurich-02', peers: [CALGARY, DENVER] }), file).config;
  t.same(restartOnlyChanges(a, b).sort(), ['listen.port', 'pop_id']);
  const kept = keepRestartOnly(a, b);
  t.same([kept.listen.port, kept.pop_id, kept.peers.length], [0, 'zurich-01', 2], 'restart-only keys from the config in force, the rest from the new file');
  t.ok(Object.isFrozen(kept));
  const withStore = { ...a, store: { type: 'redis' } } as unknown as typeof a;
  t.same(restartOnlyChanges(a, withStore), ['store.type', 'store.key_prefix', 'store.command_timeout'], 'a store change is reported per leaf, keys the new file lacks too');
  t.same(keepRestartOnly(a, withStore).store, a.store, 'and not taken: the store in force stays');
});

t.test('config reload: new pipeline, the old one lives until its last request is done', async (t) => {
  writeFileSync(file, configText());
  const { log, lines } = memoryLog();
  const reports: ReloadReport[] = [];
  const live = createLiveGuard(loadConfig(file).config, { log, now: Date.now, source: loadConfig(file), watch: false, onReload: (r) => reports.push(r), shared: memorySharedState(loadConfig(file).config, log) });
  t.teardown(() => live.close());

  const running = live.acquire();
  writeFileSync(file, configText({ peers: [CALGARY, DENVER], listen: { host: '127.0.0.1', port: 8444 } }));
  live.reload('SIGHUP');
  t.same(live.config().peers.map((p) => p.id), ['calgary-01', 'denver-02'], 'the new peer list is in force');
  t.equal(live.config().listen.port, 0, 'listen.port kept');
  t.ok(lines.some((l) => l.source === 'config' && l.key === 'listen.port' && l.log.level === 'warn'), 'and reported with its key path');
  const next = live.acquire();
  t.not(next.pipeline, running.pipeline, 'new requests get the new pipeline');
  next.release();

  writeToken();
  t.same(running.pipeline.reload('request'), [{ changed: true }], 'the old pipeline still works for its running request');
  running.release();
  running.release(); // twice is harmless
  writeToken();
  t.same(running.pipeline.reload('request'), [{ changed: false }], 'released: closed (its sources no longer load)');
  t.same(live.acquire().pipeline.reload('request'), [{ changed: true }], 'the one in force still does');

  t.same(reports.filter((r) => r.source === 'config').map((r) => r.outcome), ['ok']);
  t.same(reports.filter((r) => r.trigger === 'SIGHUP').map((r) => [r.source, r.outcome]), [['config', 'ok'], ['tls', 'unchanged'], ['bearer tokens', 'unchanged']], 'SIGHUP: config, then TLS, then the stages, each reported');
});

t.test('refusals keep everything in force', async (t) => {
  writeFileSync(file, configText());
  const { log } = memoryLog();
  const reports: ReloadReport[] = [];
  const live = createLiveGuard(loadConfig(file).config, { log, now: Date.now, source: loadConfig(file), watch: false, onReload: (r) => reports.push(r), shared: memorySharedState(loadConfig(file).config, log) });
  t.teardown(() => live.close());
  const inForce = live.acquire();
  inForce.release();

  writeFileSync(file, `${configText({ peers: [CALGARY, DENVER] })}\nunknown_key: 1\n`);
  live.reload('SIGHUP');
  t.same(live.config().peers.length, 1, 'an invalid file changes nothing');
  t.equal(live.acquire().pipeline, inForce.pipeline, 'same pipeline');

  // Valid as a file (it exists and is readable), refused when the TLS set is loaded.
  const garbage = join(dir, 'garbage.crt');
  writeFileSync(garbage, 'not a certificate');
  writeFileSync(file, configText({ peers: [CALGARY, DENVER], tls: { cert_file: garbage, key_file: pki.server.key, client_ca_file: pki.caFile } }));
  live.reload('SIGHUP');
  t.same([live.config().peers.length, live.config().tls.cert_file], [1, pki.server.cert], 'TLS material refused: nothing of that file applied');
  t.equal(live.acquire().pipeline, inForce.pipeline, 'same pipeline (the one built for it was dropped)');
  const failed = reports.filter((r) => r.source === 'config');
  t.same(failed.map((r) => r.outcome), ['failed', 'failed']);
  t.match(failed[0]!.error, /unknown_key/);
  t.match(failed[1]!.error, /tls\.cert_file/);
});
