import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import YAML from 'yaml';
import { ConfigError } from '../../../src/config/errors.ts';
import { parseConfig } from '../../../src/guard/config.ts';
import { baseConfig } from '../../helpers/guard.ts';
import { makePki } from '../../helpers/pki.ts';

const pki = makePki([]);
const dir = mkdtempSync(join(tmpdir(), 'replguard-auditcfg-'));
const parse = (audit: unknown) => parseConfig(YAML.stringify(baseConfig(pki, 'http://127.0.0.1:8080', audit === undefined ? {} : { audit })), join(dir, 'replguard.yaml'));
const problems = (audit: unknown) => {
  try {
    parse(audit);
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems.map((p) => p.path);
  }
};

t.test('defaults: stdout on, no file', async (t) => {
  t.same(parse(undefined).config.audit, { stdout: true, repeat_window: 10_000 });
});

t.test('a relative file starts at the config file’s folder', async (t) => {
  t.equal(parse({ file: 'audit.ndjson' }).config.audit.file, join(dir, 'audit.ndjson'));
  t.same(parse({ stdout: false, file: 'audit.ndjson' }).config.audit, { stdout: false, file: join(dir, 'audit.ndjson'), repeat_window: 10_000 });
});

t.test('operator mistakes name the key', async (t) => {
  t.same(problems({ stdout: false }), ['audit'], 'no destination at all');
  t.same(problems({ file: join(dir, 'missing-folder', 'audit.ndjson') }), ['audit.file'], 'folder does not exist');
  t.same(problems({ file: dir }), ['audit.file'], 'a folder, not a file');
  t.same(problems({ stdout: 'yes' }), ['audit.stdout'], 'no coercion');
  t.same(problems({ sdout: true }), ['audit.sdout'], 'unknown key');
});
