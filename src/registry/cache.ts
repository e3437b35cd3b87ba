/**
 * The last good registry on disk (`control_plane.cache_file`): the document exactly as HQ signed
 * it, with HQ's ETag, as one small JSON object. It lets a POP start, and keep serving, while HQ is
 * unreachable, and it carries the serial in force across a restart, so that an older document
 * (from HQ, a file or an attacker in between) is a rollback after the restart too.
 *
 * The file is untrusted input: whoever reads it verifies the document inside like any other
 * (registry/monitor.ts), so a changed cache can lose the copy, never forge one. Written
 * atomically (a temporary file in the same folder, flushed, then renamed over), mode 0600.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { checkReadableFile, isMissing } from '../config/files.ts';
import { MAX_REGISTRY_BYTES, RegistryError } from './verify.ts';

/** The cache's own format number: another one is refused, never guessed at. */
export const CACHE_FORMAT = 1;

const cacheSchema = z.strictObject({
  replguard_registry_cache: z.literal(CACHE_FORMAT),
  /** HQ's ETag of this document, sent back as If-None-Match; absent for a file source. */
  etag: z.string().min(1).max(256).optional(),
  /** The registry, a compact JWS, byte for byte as received. */
  registry: z.string().min(1),
});

export interface CachedRegistry {
  readonly jws: string;
  readonly etag?: string;
}

/**
 * Reads the cache: undefined when there is none yet; a RegistryError (REGISTRY_UNREADABLE or
 * REGISTRY_MALFORMED) when the file is unsafe, too large or not a cache. The document inside is
 * not verified here.
 */
export function readRegistryCache(file: string): CachedRegistry | undefined {
  if (isMissing(file)) return undefined;
  const unsafe = checkReadableFile(file, 'control_plane.cache_file');
  if (unsafe) throw new RegistryError('REGISTRY_UNREADABLE', unsafe.message);
  if (statSync(file).size > MAX_REGISTRY_BYTES + 4096) throw new RegistryError('REGISTRY_MALFORMED', `${file} is larger than a cached registry can be`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    throw new RegistryError('REGISTRY_MALFORMED', `${file} is not a registry cache (invalid JSON)`);
  }
  const parsed = cacheSchema.safeParse(json);
  if (!parsed.success) throw new RegistryError('REGISTRY_MALFORMED', `${file} is not a registry cache of format ${CACHE_FORMAT}`);
  return { jws: parsed.data.registry, ...(parsed.data.etag !== undefined ? { etag: parsed.data.etag } : {}) };
}

/** Replaces the cache in one step (never a half-written file). Throws the file system's error. */
export function writeRegistryCache(file: string, cached: CachedRegistry): void {
  const text = `${JSON.stringify({ replguard_registry_cache: CACHE_FORMAT, ...(cached.etag !== undefined ? { etag: cached.etag } : {}), registry: cached.jws })}\n`;
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkSync(tmp);
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmp, file);
  } catch (err) {
    unlinkSync(tmp);
    throw err;
  }
}
