// `replguard registry keygen | sign | verify | show`, the real program (Node, or Deno with
// REPLGUARD_TEST_RUNTIME=deno): HQ makes a key and signs a payload written in YAML; verify
// accepts it with the public key and refuses a tampered, unknown-key or rolled-back document with
// its code (exit 1); a payload that breaks the format is never signed (exit 2); and a guard
// started on what the commands wrote confirms its role from it.
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import YAML from 'yaml';
import { call } from '../helpers/client.ts';
import { baseConfig, runCli, startGuard } from '../helpers/guard.ts';
import { makePki } from '../helpers/pki.ts';
import { startBackup } from '../helpers/upstream.ts';

const dir = mkdtempSync(join(tmpdir(), 'replguard-registry-cli-'));
const nowS = Math.floor(Date.now() / 1000);
const payload = (serial: number, role = 'backup') => ({
  format: 1,
  serial,
  iat: nowS - 5,
  exp: nowS + 3600,
  pops: [
    { id: 'calgary-01', role: 'primary', replicates_to: role === 'backup' ? ['zurich-01'] : [], cert: { cn: 'calgary-01' } },
    { id: 'zurich-01', role, cert: { cn: 'zurich-01' } },
  ],
});
const writePayload = (name: string, value: unknown) => {
  const file = join(dir, name);
  writeFileSync(file, YAML.stringify(value));
  return file;
};

t.test('keygen, sign, verify, show', async (t) => {
  const hq = join(dir, 'hq');
  const made = await runCli(['registry', 'keygen', '--out', hq]);
  t.equal(made.code, 0, made.stderr);
  t.equal(statSync(`${hq}.key`).mode & 0o777, 0o600, 'the private key is 0600');
  const kid = /kid (\S+)/.exec(made.stdout)?.[1];
  t.ok(kid, 'the kid is printed');
  t.equal((await runCli(['registry', 'keygen', '--out', hq])).code, 2, 'an existing key is not replaced without --force');

  const signed = await runCli(['registry', 'sign', '-k', `${hq}.key`, '-i', writePayload('p10.yaml', payload(10)), '-o', join(dir, 'r10.jws')]);
  t.equal(signed.code, 0, signed.stderr);
  const verified = await runCli(['registry', 'verify', '--keys', `${hq}.pub`, '-i', join(dir, 'r10.jws')]);
  t.equal(verified.code, 0, verified.stderr);
  t.match(verified.stdout, `serial 10, 2 POPs, kid ${kid} (EdDSA)`);

  const shown = JSON.parse((await runCli(['registry', 'show', '-i', join(dir, 'r10.jws'), '--keys', `${hq}.pub`])).stdout);
  t.same([shown.verified, shown.serial, shown.pops[1].role], [true, 10, 'backup']);
  const unverified = await runCli(['registry', 'show', '-i', join(dir, 'r10.jws')]);
  t.same(JSON.parse(unverified.stdout).verified, false, 'without keys it says it did not verify');
  t.match(unverified.stderr, 'not verified');

  // Tampered: the payload of another document under this one's signature.
  await runCli(['registry', 'sign', '-k', `${hq}.key`, '-i', writePayload('p11.yaml', payload(11, 'primary')), '-o', join(dir, 'r11.jws')]);
  const [h, , s] = readFileSync(join(dir, 'r10.jws'), 'utf8').trim().split('.');
  const p11 = readFileSync(join(dir, 'r11.jws'), 'utf8').trim().split('.')[1];
  writeFileSync(join(dir, 'tampered.jws'), `${h}.${p11}.${s}`);
  const tampered = await runCli(['registry', 'verify', '--keys', `${hq}.pub`, '-i', join(dir, 'tampered.jws')]);
  t.equal(tampered.code, 1);
  t.match(tampered.stderr, 'REGISTRY_SIGNATURE_INVALID');

  await runCli(['registry', 'keygen', '--out', join(dir, 'other'), '--alg', 'ES256']);
  const unknown = await runCli(['registry', 'verify', '--keys', join(dir, 'other.pub'), '-i', join(dir, 'r10.jws')]);
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, 'REGISTRY_KEY_UNKNOWN');

  const rollback = await runCli(['registry', 'verify', '--keys', `${hq}.pub`, '-i', join(dir, 'r10.jws'), '--previous', join(dir, 'r11.jws')]);
  t.equal(rollback.code, 1);
  t.match(rollback.stderr, 'REGISTRY_ROLLBACK');
  t.equal((await runCli(['registry', 'verify', '--keys', `${hq}.pub`, '-i', join(dir, 'r11.jws'), '--previous', join(dir, 'r10.jws')])).code, 0, 'a newer serial than the previous one');

  const bad = await runCli(['registry', 'sign', '-k', `${hq}.key`, '-i', writePayload('bad.yaml', { ...payload(12), admins: [] }), '-o', join(dir, 'bad.jws')]);
  t.equal(bad.code, 2, 'a payload that breaks the format is not signed');
  t.match(bad.stderr, 'admins');
  t.equal((await runCli(['registry', 'frobnicate'])).code, 2);
});

t.test('a guard confirms its role from what the commands wrote', async (t) => {
  const pki = makePki([]);
  const backup = await startBackup();
  t.teardown(() => backup.stop());
  const hq = join(dir, 'hq-guard');
  await runCli(['registry', 'keygen', '--out', hq, '--alg', 'ES256']);
  const registryFile = join(dir, 'guard.jws');
  const signed = await runCli(['registry', 'sign', '-k', `${hq}.key`, '-i', writePayload('guard.yaml', payload(1)), '-o', registryFile]);
  t.equal(signed.code, 0, signed.stderr);
  const guard = await startGuard(baseConfig(pki, backup.url, { control_plane: { keys: [`${hq}.pub`], registry_file: registryFile } }));
  t.teardown(() => guard.stop());
  t.equal((await call(guard.port, pki.caFile, { cert: pki.client('calgary-01') })).status, 200);
});

t.test('usage mistakes: exit 2, each named with what fits instead', async (t) => {
  const none = await runCli(['registry']);
  t.equal(none.code, 2);
  t.match(none.stderr, /SUBCOMMAND is required: keygen, sign, verify or show/);
  const unknown = await runCli(['registry', 'sing']);
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /replguard registry: "sing" is not a subcommand; use keygen, sign, verify, show/);
  const foreign = await runCli(['registry', 'show', '-i', 'registry.jws', '--previous', 'old.jws']);
  t.equal(foreign.code, 2, 'an option of another subcommand is not silently ignored');
  t.match(foreign.stderr, /replguard registry show: --previous does not apply to show; it takes --keys, --in/);
  const missing = await runCli(['registry', 'sign', '-i', 'registry.yaml']);
  t.equal(missing.code, 2);
  t.match(missing.stderr, /replguard registry sign: --key is required/);
});
