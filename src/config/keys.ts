/**
 * The key paths the schema knows, walked from its JSON Schema form: used for "did you mean"
 * hints on unknown keys and by the test that keeps the README's reference complete.
 */
import { z } from 'zod';
import { configSchema } from './schema.ts';
import { primaryConfigSchema } from './primary-schema.ts';

/** The two schemas, by role: the guard's (backup) and the signer's (primary). */
export type Role = 'backup' | 'primary';
const SCHEMAS = { backup: configSchema, primary: primaryConfigSchema } as const;

interface JsonSchemaNode {
  type?: string | string[];
  properties?: Record<string, JsonSchemaNode>;
  items?: JsonSchemaNode;
  anyOf?: JsonSchemaNode[];
  allOf?: JsonSchemaNode[];
}

function walk(node: JsonSchemaNode | undefined, prefix: string, out: string[]): void {
  if (!node) return;
  for (const alt of [...(node.anyOf ?? []), ...(node.allOf ?? [])]) walk(alt, prefix, out);
  if (node.properties) {
    for (const [key, child] of Object.entries(node.properties)) {
      const path = prefix ? `${prefix}.${key}` : key;
      out.push(path);
      walk(child, path, out);
    }
  }
  if (node.items) walk(node.items, `${prefix}[]`, out);
}

const cached = new Map<Role, readonly string[]>();

/** Every key path of a role's schema (the guard's by default), arrays written `peers[].id`. */
export function configKeyPaths(role: Role = 'backup'): readonly string[] {
  let paths = cached.get(role);
  if (!paths) {
    const out: string[] = [];
    walk(z.toJSONSchema(SCHEMAS[role], { io: 'input', unrepresentable: 'any' }) as JsonSchemaNode, '', out);
    paths = Object.freeze([...new Set(out)]);
    cached.set(role, paths);
  }
  return paths;
}

/** The keys allowed directly under `parent` (a path with array indexes removed). */
export function keysUnder(parent: string, role: Role = 'backup'): string[] {
  const prefix = parent ? `${parent}.` : '';
  return configKeyPaths(role)
    .filter((p) => p.startsWith(prefix) && !p.slice(prefix.length).includes('.'))
    .map((p) => p.slice(prefix.length))
    .filter((k) => !k.includes('[]'));
}

/** The closest known key, when one is close enough to be a likely typo. */
export function suggestKey(unknown: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(unknown.length / 3)) + 1;
  for (const candidate of known) {
    const d = editDistance(unknown, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}
