// deploy/shippers/: each configuration names the shipper version it was written for, the YAML ones
// parse, the README's table lists every one of them and says which was run here (only rsyslog,
// by test/observability/shipper.test.ts), and the parts that can be checked without the shipper
// itself are: Fluent Bit's tail tag regex picks the replguard container out of real file names,
// and every configuration reads stdout only (stderr is the operational log).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import t from 'tap';
import YAML from 'yaml';
import { ROOT } from '../helpers/guard.ts';
import { tableUnder } from '../helpers/markdown.ts';

const DIR = join(ROOT, 'deploy', 'shippers');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}
const configs = files(DIR).filter((f) => !f.endsWith('README.md'));
const read = (f: string) => readFileSync(f, 'utf8');

t.test('every configuration names the version it was written for; the YAML ones parse', async (t) => {
  t.ok(configs.length >= 5, `${configs.length} files`);
  for (const f of configs) {
    const name = relative(DIR, f);
    if (f.endsWith('parsers.conf')) {
      t.match(read(f), /Fluent Bit \d+\.\d+/, `${name}: names the Fluent Bit version`);
      continue;
    }
    t.match(read(f), /Written for (and run with )?(Vector|Fluent Bit|Filebeat|rsyslog) \d+\.\d+/, `${name}: names the version`);
    if (/\.ya?ml$/.test(f)) t.doesNotThrow(() => YAML.parse(read(f)), `${name}: parses as YAML`);
  }
});

t.test('the README lists every configuration and says plainly which were run here', async (t) => {
  const readme = read(join(DIR, 'README.md'));
  const rows = tableUnder(readme, 'Configurations');
  const linked = rows.flatMap((r) => [...r.Shipper!.matchAll(/\]\(([^)]+)\)/g)].map((m) => m[1]!));
  for (const f of configs) t.ok(linked.includes(relative(DIR, f)), `${relative(DIR, f)} is in the table`);
  for (const l of linked) t.ok(existsSync(join(DIR, l)), `${l} exists`);
  for (const r of rows) {
    const run = r['Run here?']!;
    if (r.Shipper!.startsWith('rsyslog')) {
      t.match(run, /^\*\*Yes\.\*\*/, 'rsyslog: run here');
      t.match(run, /test\/observability\/shipper\.test\.ts/, 'rsyslog: by the shipper test');
    } else {
      t.match(run, /^\*\*No\.\*\*/, `${r.Shipper!.split(',')[0]}: not run here, and said so`);
    }
    t.match(r['Written for'], /\d+\.\d+/, `${r.Shipper!.split(',')[0]}: a version`);
  }
  t.match(read(join(ROOT, 'test', 'observability', 'shipper.test.ts')), /deploy', 'shippers', 'rsyslog', 'replguard-audit\.conf'/, 'the shipper test runs the rsyslog file');
});

t.test("Fluent Bit's tail tag regex picks the replguard container out of the kubelet's file names", async (t) => {
  const conf = read(join(DIR, 'fluent-bit', 'fluent-bit.conf'));
  const source = /^\s*Tag_Regex\s+(.+)$/m.exec(conf)?.[1];
  t.ok(source, 'a Tag_Regex');
  const re = new RegExp(source!);
  const id = `${'a'.repeat(60)}0f9e`;
  const cases: Array<[string, string | undefined]> = [
    [`zurich-01-replguard-6d5f8c7b9-x2x7q_replication_replguard-${id}.log`, 'replguard'],
    [`zurich-01-replguard-6d5f8c7b9-x2x7q_replication_backup-${id}.log`, 'backup'],
    [`replguard-0.replguard.svc_ns-1_replguard-${id}.log`, 'replguard'],
  ];
  for (const [file, container] of cases) {
    const m = re.exec(file);
    t.equal(m?.groups?.container_name, container, `${file}: container ${container}`);
  }
  // The Match takes the container named exactly replguard.
  t.match(conf, /Tag\s+replguard\.<namespace_name>\.<pod_name>\.<container_name>/);
  t.equal((conf.match(/^\s*Match\s+replguard\.\*\.\*\.replguard\s*$/gm) ?? []).length, 5, 'every filter and the output match only that container');
  const parsers = read(join(DIR, 'fluent-bit', 'parsers.conf'));
  const tagRe = new RegExp(/Name\s+replguard_tag[\s\S]*?Regex\s+(\S+)/.exec(parsers)![1]!);
  t.same({ ...tagRe.exec('replication.replguard-0.replguard.svc.replguard')?.groups }, { namespace_name: 'replication', pod_name: 'replguard-0.replguard.svc', container_name: 'replguard' }, 'the kubernetes filter reads the tag back, a pod name with dots too');
});

t.test('every configuration ships stdout only', async (t) => {
  t.match(read(join(DIR, 'vector', 'vector.yaml')), /if \.stream != "stdout"/);
  t.match(read(join(DIR, 'fluent-bit', 'fluent-bit.conf')), /Regex\s+stream \^stdout\$/);
  const filebeat = YAML.parse(read(join(DIR, 'filebeat', 'filebeat.yml'))) as { 'filebeat.inputs': Array<{ parsers: Array<Record<string, { stream?: string; target?: string; overwrite_keys?: boolean }>> }> };
  const parsers = filebeat['filebeat.inputs'][0]!.parsers;
  t.equal(parsers[0]!.container?.stream, 'stdout');
  t.same(parsers[1]!.ndjson, { target: '', overwrite_keys: true, add_error_key: true }, 'the event at the root, its values over Filebeat\'s');
});
