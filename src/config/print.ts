/**
 * The effective config as an operator reads it (`check-config --print`): every default applied,
 * paths absolute, durations and sizes written back with units (300000 ms is `5m`). The config
 * holds no secret, only the paths of the files that do, so nothing is left out. Also the list of
 * the files a config names (`doctor`).
 */
import type { z } from 'zod';
import { FIELD_KINDS } from './fields.ts';
import { configSchema } from './schema.ts';
import { primaryConfigSchema } from './primary-schema.ts';
import type { Role } from './keys.ts';

type Def = { type: string; innerType?: z.ZodType; in?: z.ZodType; shape?: Record<string, z.ZodType>; element?: z.ZodType };
const defOf = (schema: z.ZodType) => (schema as unknown as { _zod: { def: Def } })._zod.def;

/** The kind of a field, looking through default, optional, refine and transform wrappers. */
function kindOf(schema: z.ZodType | undefined): 'duration' | 'size' | 'file' | undefined {
  for (let s = schema; s !== undefined;) {
    const kind = FIELD_KINDS.get(s)?.kind;
    if (kind) return kind;
    const def = defOf(s);
    s = def.innerType ?? (def.type === 'pipe' ? def.in : undefined);
  }
  return undefined;
}

/** The object or array schema under the wrappers, for walking into it. */
function container(schema: z.ZodType | undefined): Def | undefined {
  for (let s = schema; s !== undefined;) {
    const def = defOf(s);
    if (def.type === 'object' || def.type === 'array') return def;
    s = def.innerType ?? (def.type === 'pipe' ? def.in : undefined);
  }
  return undefined;
}

const DURATION_UNITS: Array<[string, number]> = [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]];
const SIZE_UNITS: Array<[string, number]> = [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]];

export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  for (const [unit, n] of DURATION_UNITS) if (ms % n === 0) return `${ms / n}${unit}`;
  return `${ms}ms`;
}

export function formatSize(bytes: number): string {
  for (const [unit, n] of SIZE_UNITS) if (bytes > 0 && bytes % n === 0) return `${bytes / n}${unit}`;
  return String(bytes);
}

function withUnits(value: unknown, schema: z.ZodType | undefined): unknown {
  const kind = kindOf(schema);
  if (kind === 'duration' && typeof value === 'number') return formatDuration(value);
  if (kind === 'size' && typeof value === 'number') return formatSize(value);
  const def = container(schema);
  if (Array.isArray(value)) return value.map((v) => withUnits(v, def?.type === 'array' ? def.element : undefined));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withUnits(v, def?.type === 'object' ? def.shape?.[k] : undefined)]));
  }
  return value;
}

const schemaOf = (role: Role) => (role === 'backup' ? configSchema : primaryConfigSchema);

function collectFiles(value: unknown, schema: z.ZodType | undefined, path: string, out: Array<{ path: string; file: string }>): void {
  if (kindOf(schema) === 'file' && typeof value === 'string') {
    out.push({ path, file: value });
    return;
  }
  const def = container(schema);
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      collectFiles(v, def?.type === 'array' ? def.element : undefined, `${path}[${i}]`, out);
    });
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) collectFiles(v, def?.type === 'object' ? def.shape?.[k] : undefined, path ? `${path}.${k}` : k, out);
  }
}

/** Every file a parsed config of `role` names, with its key path (`peers[0].token_files[1]`). */
export function configFiles(role: Role, config: object): Array<{ path: string; file: string }> {
  const out: Array<{ path: string; file: string }> = [];
  collectFiles(config, schemaOf(role), '', out);
  return out;
}

/** A parsed config of `role` as plain data with units, for YAML output. */
export function effectiveConfig(role: Role, config: object): Record<string, unknown> {
  return withUnits(config, schemaOf(role)) as Record<string, unknown>;
}
