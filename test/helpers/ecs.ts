/**
 * Checks an audit record against the ECS field list the `@elastic/ecs` package ships (its
 * generated `ecs_flat`, the same data as ECS's own ecs_flat.yml): every field outside
 * `replguard.*` (the one custom namespace) is an ECS field, its value has the field's type
 * (arrays where ECS normalises to an array, a scalar elsewhere), the four categorisation fields
 * hold allowed values only, and each `event.type` is one ECS expects for some `event.category`
 * of the same event (the pairing Elastic's integration tooling checks). Everywhere, `replguard.*`
 * included: no empty object, array or string, and no placeholder port or status.
 */
import { createRequire } from 'node:module';
import { isIP } from 'node:net';

interface EcsField {
  readonly type: string;
  readonly normalize: readonly string[];
  readonly allowed_values?: ReadonlyArray<{ readonly name: string; readonly expected_event_types?: readonly string[] }>;
}

const require = createRequire(import.meta.url);
/** The ECS version of the field list (`@elastic/ecs`'s generated/ecs.ts carries the same). */
export const ECS_FLAT: Readonly<Record<string, EcsField>> = require('@elastic/ecs/build/commonjs/ecs_flat.js').EcsFlat;

const CUSTOM = 'replguard';

/** Field-set prefixes (`tls`, `tls.client`, `tls.client.hash`): an object there nests ECS fields. */
const PREFIXES = new Set<string>();
for (const name of Object.keys(ECS_FLAT)) {
  const parts = name.split('.');
  for (let i = 1; i < parts.length; i++) PREFIXES.add(parts.slice(0, i).join('.'));
}

const expectedTypes = new Map<string, ReadonlySet<string>>(
  (ECS_FLAT['event.category']!.allowed_values ?? []).map((v) => [v.name, new Set(v.expected_event_types ?? [])]),
);

const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/;

function typeProblem(type: string, value: unknown): string | undefined {
  switch (type) {
    case 'keyword':
    case 'constant_keyword':
    case 'wildcard':
    case 'match_only_text':
    case 'text':
      return typeof value === 'string' ? undefined : `a ${type} must be a string`;
    case 'long':
      return Number.isSafeInteger(value) ? undefined : 'a long must be an integer';
    case 'float':
    case 'scaled_float':
      return typeof value === 'number' && Number.isFinite(value) ? undefined : `a ${type} must be a finite number`;
    case 'boolean':
      return typeof value === 'boolean' ? undefined : 'a boolean must be true or false';
    case 'date':
      return typeof value === 'string' && ISO_8601.test(value) && !Number.isNaN(Date.parse(value)) ? undefined : 'a date must be an ISO 8601 string';
    case 'ip':
      return typeof value === 'string' && isIP(value) !== 0 ? undefined : 'an ip must be an IPv4 or IPv6 address';
    case 'object':
    case 'flattened':
      return typeof value === 'object' && value !== null && !Array.isArray(value) ? undefined : `a ${type} must be an object`;
    default:
      return `type ${type} is not one this checker knows`;
  }
}

/** Values that say "unknown" instead of leaving the field out. */
function placeholderProblem(path: string, value: unknown): string | undefined {
  if (value === '') return 'an empty string (leave the field out)';
  if (/(^|\.)port$/.test(path) && !(Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 65535)) return 'a port outside 1..65535';
  if (/(^|\.)(status_code|status)$/.test(path) && !(Number.isInteger(value) && (value as number) >= 100 && (value as number) <= 599)) return 'an HTTP status outside 100..599';
  return undefined;
}

/** Every problem of one record, as `path: what` lines; empty when it is exact ECS. */
export function ecsProblems(record: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const walk = (path: string, value: unknown, custom: boolean) => {
    if (value === null || value === undefined) {
      problems.push(`${path}: null (leave the field out)`);
      return;
    }
    const field = custom ? undefined : ECS_FLAT[path];
    if (Array.isArray(value)) {
      if (value.length === 0) problems.push(`${path}: an empty array (leave the field out)`);
      if (!custom) {
        if (!field) problems.push(`${path}: not an ECS field`);
        else if (!field.normalize.includes('array') && field.type !== 'nested') problems.push(`${path}: ECS expects one value, not an array`);
      }
      value.forEach((v, i) => {
        if (custom) walk(`${path}[${i}]`, v, true);
        else if (field) leaf(path, field, v);
      });
      return;
    }
    if (typeof value === 'object') {
      const entries = Object.entries(value as Record<string, unknown>);
      if (entries.length === 0) problems.push(`${path}: an empty object (leave the field out)`);
      if (!custom && field && (field.type === 'object' || field.type === 'flattened')) return leaf(path, field, value);
      if (!custom && !PREFIXES.has(path)) problems.push(`${path}: not an ECS field set (custom fields belong under ${CUSTOM}.*)`);
      for (const [k, v] of entries) walk(`${path}.${k}`, v, custom);
      return;
    }
    if (custom) {
      const p = placeholderProblem(path, value);
      if (p) problems.push(`${path}: ${p}`);
      return;
    }
    if (!field) problems.push(`${path}: not an ECS field (custom fields belong under ${CUSTOM}.*)`);
    else {
      if (field.normalize.includes('array')) problems.push(`${path}: ECS normalises this field to an array`);
      leaf(path, field, value);
    }
  };
  const leaf = (path: string, field: EcsField, value: unknown) => {
    const t = typeProblem(field.type, value);
    if (t) problems.push(`${path}: ${t} (got ${JSON.stringify(value)})`);
    const p = placeholderProblem(path, value);
    if (p) problems.push(`${path}: ${p}`);
    if (field.allowed_values && !field.allowed_values.some((a) => a.name === value)) {
      problems.push(`${path}: ${JSON.stringify(value)} is not an allowed value (${field.allowed_values.map((a) => a.name).join(', ')})`);
    }
  };
  for (const [k, v] of Object.entries(record)) walk(k, v, k === CUSTOM);

  const event = record.event as { category?: unknown; type?: unknown } | undefined;
  if (Array.isArray(event?.category) && Array.isArray(event?.type)) {
    const categories = event.category.filter((c): c is string => expectedTypes.has(c as string));
    for (const type of event.type) {
      if (categories.length > 0 && !categories.some((c) => expectedTypes.get(c)!.has(type as string))) {
        problems.push(`event.type: ${JSON.stringify(type)} is expected by none of event.category ${JSON.stringify(event.category)}`);
      }
    }
  }
  for (const required of ['@timestamp', 'ecs.version', 'event.kind', 'event.category', 'event.type', 'event.outcome', 'event.dataset']) {
    if (get(record, required) === undefined) problems.push(`${required}: missing`);
  }
  return problems;
}

function get(record: Record<string, unknown>, path: string): unknown {
  if (path in record) return record[path];
  return path.split('.').reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), record);
}
