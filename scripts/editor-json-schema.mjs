#!/usr/bin/env node
/**
 * config/replguard.schema.json: the JSON Schema of a replguard config file, for editors (the
 * `# yaml-language-server: $schema=./replguard.schema.json` line at the top of every example
 * config), generated from the product's zod schemas the same way as the chart's
 * values.schema.json (scripts/config-json-schema.mjs: zod's `z.toJSONSchema`, the input side).
 * Unlike the chart's, this is a whole config file: required keys stay required.
 *
 *   TS_NODE_TRANSPILE_ONLY=1 node --import @tapjs/typescript/import scripts/editor-json-schema.mjs          # write
 *   TS_NODE_TRANSPILE_ONLY=1 node --import @tapjs/typescript/import scripts/editor-json-schema.mjs --check  # exit 1 if stale
 *
 * - `default` annotations are dropped: zod records them on the output side (300000 for "300s");
 *   config/backup.yaml and config/primary.yaml show every default as the file writes it;
 * - the role picks the schema: role primary is the signer's, anything else the guard's;
 * - refinements (e.g. "name exactly one of cn, dns_san or uri_san") and the file checks have no
 *   JSON Schema form: `replguard check-config` still makes them.
 * test/packaging/editor-json-schema.test.ts fails when the committed file is not what this makes.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { primaryConfigSchema } from '../src/config/primary-schema.ts';
import { configSchema } from '../src/config/schema.ts';
import { formatJson } from './config-json-schema.mjs';

export const EDITOR_SCHEMA_PATH = fileURLToPath(new URL('../config/replguard.schema.json', import.meta.url));

function withoutDefaults(node) {
  if (Array.isArray(node)) return node.map(withoutDefaults);
  if (node === null || typeof node !== 'object') return node;
  return Object.fromEntries(Object.entries(node).filter(([k]) => k !== 'default').map(([k, v]) => [k, withoutDefaults(v)]));
}

function roleSchema(schema) {
  const json = z.toJSONSchema(schema, { io: 'input', target: 'draft-7' });
  delete json.$schema;
  return withoutDefaults(json);
}

export function editorSchema() {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'replguard config',
    description: 'A replguard config file: role backup (the guard) or role primary (the signer). Generated from src/config/schema.ts and src/config/primary-schema.ts by scripts/editor-json-schema.mjs; replguard check-config makes every check, this schema the ones JSON Schema can say.',
    if: { properties: { role: { const: 'primary' } }, required: ['role'] },
    then: { $ref: '#/definitions/primary' },
    else: { $ref: '#/definitions/backup' },
    definitions: { backup: roleSchema(configSchema), primary: roleSchema(primaryConfigSchema) },
  };
}

export function editorSchemaText() {
  return `${formatJson(editorSchema())}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const next = editorSchemaText();
  let current = '';
  try { current = readFileSync(EDITOR_SCHEMA_PATH, 'utf8'); } catch {}
  if (process.argv.includes('--check')) {
    if (next !== current) {
      console.error(`${EDITOR_SCHEMA_PATH} is not what src/config/schema.ts makes: run scripts/editor-json-schema.mjs`);
      process.exit(1);
    }
  } else if (next !== current) {
    writeFileSync(EDITOR_SCHEMA_PATH, next);
    console.log(`wrote ${EDITOR_SCHEMA_PATH}`);
  }
}
