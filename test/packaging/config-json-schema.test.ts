// helm/replguard/values.schema.json validates `config` with JSON Schemas generated from the
// product's zod schemas (scripts/config-json-schema.mjs): the committed file must be exactly what
// the generator makes from src/config/schema.ts today, so a new or changed config key cannot
// leave the chart accepting what replguard refuses (or refusing what it accepts).
import { readFileSync } from 'node:fs';
import t from 'tap';
import { primaryConfigSchema } from '../../src/config/primary-schema.ts';
import { configSchema } from '../../src/config/schema.ts';
// @ts-expect-error -- a plain ES module without types, run by node as well as imported here
import { buildValuesSchema, configJsonSchema, formatJson, GENERATED, VALUES_SCHEMA_PATH } from '../../scripts/config-json-schema.mjs';

type Json = { [key: string]: unknown };
const committed = readFileSync(VALUES_SCHEMA_PATH, 'utf8');
const values = JSON.parse(committed) as { definitions: Record<string, Json>; properties: Record<string, Json> };

t.test('the committed values.schema.json is what the generator makes from src/config/schema.ts', async (t) => {
  // On failure: TS_NODE_TRANSPILE_ONLY=1 node --import @tapjs/typescript/import scripts/config-json-schema.mjs
  t.equal(buildValuesSchema(committed), committed);
  t.same(values.properties.config, { $ref: '#/definitions/replguardConfig' }, 'values.config is checked against it');
  for (const name of GENERATED) t.ok(values.definitions[name], `definitions.${name}`);
});

t.test('each role has every top-level key of its zod schema, and no other', async (t) => {
  const keys = (name: string) => Object.keys(values.definitions[name]!.properties as Json).sort();
  t.same(keys('replguardBackupConfig'), Object.keys(configSchema.shape).sort(), 'role backup: configSchema');
  t.same(keys('replguardPrimaryConfig'), Object.keys(primaryConfigSchema.shape).sort(), 'role primary: primaryConfigSchema');
  for (const name of ['replguardBackupConfig', 'replguardPrimaryConfig']) {
    t.equal(values.definitions[name]!.additionalProperties, false, `${name}: unknown keys are refused, as replguard refuses them`);
  }
});

t.test('partial along the merge paths, whole in list items', async (t) => {
  const backup = configJsonSchema(configSchema) as Json;
  const props = backup.properties as Record<string, Json>;
  t.notOk('required' in backup, 'no top-level key is required: the chart supplies them');
  t.notOk('required' in props.tls!, 'tls: the chart supplies the file paths');
  const peer = (props.peers as { items: Json }).items;
  t.same(peer.required, ['id', 'cert'], 'a peer (a list item) keeps its required keys');
  t.equal((props.auth!.properties as Record<string, Json>).methods!.type, 'array');
  t.notMatch(JSON.stringify(backup), /"default":/, 'no output-side defaults');
  t.same((props.pop_id as { anyOf: Json[] }).anyOf[0], { const: '' }, 'pop_id may be empty (the release name)');
});

t.test('the layout keeps short objects on one line', async (t) => {
  t.equal(formatJson({ a: { type: 'string' }, b: [1, 2] }), '{ "a": { "type": "string" }, "b": [1, 2] }');
  t.equal(formatJson({ long: 'x'.repeat(120) }), `{\n  "long": "${'x'.repeat(120)}"\n}`);
});
