#!/usr/bin/env node
/**
 * The `config` part of helm/replguard/values.schema.json, generated from the product's own zod
 * schemas (src/config/schema.ts `configSchema` for role backup, src/config/primary-schema.ts `primaryConfigSchema` for role
 * primary) with zod's `z.toJSONSchema`, so that `helm install` refuses what `replguard serve`
 * would refuse at start-up (`--set config.auth.method=mtls` is an unknown key) instead of the pod
 * crash-looping. The rest of values.schema.json is written by hand; this script replaces only
 * the definitions it owns and writes the file back in one stable layout.
 *
 *   TS_NODE_TRANSPILE_ONLY=1 node --import @tapjs/typescript/import scripts/config-json-schema.mjs          # write
 *   TS_NODE_TRANSPILE_ONLY=1 node --import @tapjs/typescript/import scripts/config-json-schema.mjs --check  # exit 1 if stale
 *
 * (the loader is the one tap runs the tests with; test/packaging/config-json-schema.test.ts
 * fails when the committed file is not what this script makes.)
 *
 * What the chart needs beyond the zod schemas, applied here and nowhere else:
 * - the input side (`io: "input"`): what a config file says, before defaults and unit parsing
 *   (a duration is a string or a number; a transform checks it later, in replguard);
 * - no `default` annotations: zod records them on the output side (300000 for "300s"), which
 *   would mislead a reader; the chart's own defaults are in its templates;
 * - no `required` along the merge paths: values.config is merged over the chart's defaults
 *   (maps merge, so a key of any map may come from the chart), while a list replaces the
 *   chart's list, so list items (a peer, a route) keep their required keys;
 * - `pop_id` may also be "" (the chart's "use the release name");
 * - the role picks the schema: role primary validates against the signer's, anything else
 *   against the guard's.
 * Refinements (e.g. "name exactly one of cn, dns_san or uri_san") have no JSON Schema form: the
 * pod's start-up still checks them, as `replguard check-config` does.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { primaryConfigSchema } from '../src/config/primary-schema.ts';
import { configSchema } from '../src/config/schema.ts';

export const VALUES_SCHEMA_PATH = fileURLToPath(new URL('../helm/replguard/values.schema.json', import.meta.url));

/** The definitions this script owns in values.schema.json. */
export const GENERATED = ['replguardConfig', 'replguardBackupConfig', 'replguardPrimaryConfig'];

/** A zod schema as the JSON Schema (draft-07) of a partial config that the chart completes. */
export function configJsonSchema(schema) {
  const json = z.toJSONSchema(schema, { io: 'input', target: 'draft-7' });
  delete json.$schema;
  const out = strip(json, true);
  out.properties.pop_id = { anyOf: [{ const: '' }, out.properties.pop_id], description: "this POP's id; empty = the release name" };
  return out;
}

/** Drops `default` everywhere and `required` where `merged` (reached through object properties from the root). */
function strip(node, merged) {
  if (Array.isArray(node)) return node.map((n) => strip(n, false));
  if (node === null || typeof node !== 'object') return node;
  const out = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === 'default') continue;
    if (key === 'required' && merged) continue;
    if (key === 'properties') {
      out.properties = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, strip(v, merged)]));
    } else if (key === 'anyOf' || key === 'oneOf' || key === 'allOf') {
      // a union of a map (e.g. a section) keeps the merge semantics of its branches
      out[key] = value.map((v) => strip(v, merged));
    } else {
      out[key] = strip(value, false);
    }
  }
  return out;
}

/** The generated definitions. */
export function generatedDefinitions() {
  return {
    replguardConfig: {
      description: 'replguard.yaml (values.config, merged over the chart\'s defaults), checked with the product\'s own schema, generated from src/config/schema.ts by scripts/config-json-schema.mjs: role primary (the signer) or backup (the guard, the default)',
      if: { properties: { role: { const: 'primary' } }, required: ['role'] },
      then: { $ref: '#/definitions/replguardPrimaryConfig' },
      else: { $ref: '#/definitions/replguardBackupConfig' },
    },
    replguardBackupConfig: configJsonSchema(configSchema),
    replguardPrimaryConfig: configJsonSchema(primaryConfigSchema),
  };
}

/** values.schema.json as it should be: `text` (the committed file) with the generated definitions in place. */
export function buildValuesSchema(text) {
  const schema = JSON.parse(text);
  schema.definitions = { ...schema.definitions, ...generatedDefinitions() };
  schema.properties.config = { $ref: '#/definitions/replguardConfig' };
  return formatJson(schema) + '\n';
}

/**
 * JSON with 2-space indentation where an object or array fits on one line of `width`
 * characters it stays on one (`{ "type": "string" }`), so that the file reads like the
 * hand-written schema it extends.
 */
export function formatJson(value, indent = '', width = 110, used = indent.length) {
  const inline = inlineJson(value);
  if (inline.length + used <= width || value === null || typeof value !== 'object') return inline;
  const inner = indent + '  ';
  if (Array.isArray(value)) return `[\n${value.map((v) => inner + formatJson(v, inner, width)).join(',\n')}\n${indent}]`;
  const entries = Object.entries(value).map(([k, v]) => {
    const key = `${inner}${JSON.stringify(k)}: `;
    return key + formatJson(v, inner, width, key.length);
  });
  return `{\n${entries.join(',\n')}\n${indent}}`;
}

function inlineJson(value) {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return value.length === 0 ? '[]' : `[${value.map(inlineJson).join(', ')}]`;
  const entries = Object.entries(value);
  return entries.length === 0 ? '{}' : `{ ${entries.map(([k, v]) => `${JSON.stringify(k)}: ${inlineJson(v)}`).join(', ')} }`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const current = readFileSync(VALUES_SCHEMA_PATH, 'utf8');
  const next = buildValuesSchema(current);
  if (process.argv.includes('--check')) {
    if (next !== current) {
      console.error(`${VALUES_SCHEMA_PATH} is not what src/config/schema.ts makes: run scripts/config-json-schema.mjs`);
      process.exit(1);
    }
    console.log(`${VALUES_SCHEMA_PATH}: in step with src/config/schema.ts`);
  } else {
    writeFileSync(VALUES_SCHEMA_PATH, next);
    console.log(`wrote ${VALUES_SCHEMA_PATH}`);
  }
}
