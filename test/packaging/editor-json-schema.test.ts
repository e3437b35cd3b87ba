// config/replguard.schema.json (the JSON Schema editors use through the yaml-language-server
// line of every example config) is what scripts/editor-json-schema.mjs makes from the zod
// schemas today; it accepts every example config; config/backup.yaml and config/primary.yaml
// name every key of their role's schema (commented out where it has no default to show).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import t from 'tap';
import YAML from 'yaml';
import { configKeyPaths, type Role } from '../../src/config/keys.ts';
// @ts-expect-error -- a plain ES module without types, run by node as well as imported here
import { EDITOR_SCHEMA_PATH, editorSchemaText } from '../../scripts/editor-json-schema.mjs';

const CONFIG_DIR = join(import.meta.dirname, '..', '..', 'config');
const MODELINE = '# yaml-language-server: $schema=./replguard.schema.json';
const examples = readdirSync(CONFIG_DIR).filter((f) => f.endsWith('.yaml'));
const committed = readFileSync(EDITOR_SCHEMA_PATH, 'utf8');

t.test('the committed schema is what the generator makes from the zod schemas', async (t) => {
  // On failure: TS_NODE_TRANSPILE_ONLY=1 node --import @tapjs/typescript/import scripts/editor-json-schema.mjs
  t.equal(committed, editorSchemaText());
});

t.test('every example config: the modeline first, and the schema accepts it', async (t) => {
  const validate = new Ajv({ strict: false, allErrors: true }).compile(JSON.parse(committed));
  t.ok(examples.length >= 4, examples.join(', '));
  for (const file of examples) {
    const text = readFileSync(join(CONFIG_DIR, file), 'utf8');
    t.equal(text.split('\n')[0], MODELINE, `${file}: modeline`);
    t.ok(validate(YAML.parse(text)), `${file}: ${JSON.stringify(validate.errors)}`);
    t.ok(validate(YAML.parse(uncommented(text))), `${file} with its commented-out keys: ${JSON.stringify(validate.errors)}`);
  }
});

t.test('the schema refuses what replguard refuses: an unknown key, a wrong type, a signer key in a guard', async (t) => {
  const validate = new Ajv({ strict: false }).compile(JSON.parse(committed));
  const backup = YAML.parse(readFileSync(join(CONFIG_DIR, 'backup.yaml'), 'utf8'));
  t.notOk(validate({ ...backup, lisen: {} }), 'unknown key');
  t.notOk(validate({ ...backup, listen: { port: '8443' } }), 'no coercion');
  t.notOk(validate({ ...backup, backup: { id: 'x' } }), 'cascade: a guard has no backup');
  const primary = YAML.parse(readFileSync(join(CONFIG_DIR, 'primary.yaml'), 'utf8'));
  t.notOk(validate({ ...primary, peers: [] }), 'cascade: a signer has no peers');
});

/** The example with its commented-out keys (`# key: value` lines at the indentation of a key) written in. */
function uncommented(text: string): string {
  return text.split('\n').map((line) => line.replace(/^(\s*)# (\s*(?:- )?[a-z_]+:(?: .*)?)$/, '$1$2')).join('\n');
}

function keyPaths(value: unknown, prefix: string, out: Set<string>): Set<string> {
  if (Array.isArray(value)) for (const item of value) keyPaths(item, `${prefix}[]`, out);
  else if (value !== null && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) {
      const path = prefix ? `${prefix}.${key}` : key;
      out.add(path);
      keyPaths(child, path, out);
    }
  }
  return out;
}

for (const [file, role] of [['backup.yaml', 'backup'], ['primary.yaml', 'primary']] as Array<[string, Role]>) {
  t.test(`${file} lists every key of role ${role}`, async (t) => {
    const listed = keyPaths(YAML.parse(uncommented(readFileSync(join(CONFIG_DIR, file), 'utf8'))), '', new Set());
    const missing = configKeyPaths(role).filter((p) => !listed.has(p));
    t.same(missing, [], `keys of the schema not in config/${file}`);
  });
}
