/**
 * Durations and sizes as the config file writes them. Parsed once at load time so that a
 * malformed value fails at start-up, never on the first request.
 */

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/;
const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `300s`, `5m`, `250ms`, `1h`, `2d`, or plain seconds (`300`). Returns milliseconds, or undefined. */
export function parseDuration(value: string | number): number | undefined {
  const text = typeof value === 'number' ? String(value) : value.trim();
  const m = DURATION.exec(text);
  if (!m) return undefined;
  const ms = Number(m[1]) * DURATION_MS[m[2] ?? 's']!;
  return Number.isFinite(ms) && ms <= Number.MAX_SAFE_INTEGER ? Math.round(ms) : undefined;
}

const SIZE = /^(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?$/;
const SIZE_BYTES: Record<string, number> = {
  B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, KB: 1000, MB: 1000 ** 2, GB: 1000 ** 3,
};

/** `10MiB`, `512KiB`, `1MB`, or plain bytes (`1048576`). Returns bytes, or undefined. */
export function parseSize(value: string | number): number | undefined {
  const text = typeof value === 'number' ? String(value) : value.trim();
  const m = SIZE.exec(text);
  if (!m) return undefined;
  const bytes = Number(m[1]) * SIZE_BYTES[m[2] ?? 'B']!;
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}
