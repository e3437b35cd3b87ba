/**
 * The registry in force in a running guard or signer, and whether it lets this process serve.
 *
 * - Sources: `control_plane.registry_file`, or HQ's `registry_url` (registry/hq-source.ts), and
 *   the last good copy on disk, `cache_file` (registry/cache.ts), which is untrusted input:
 *   verified like any document. The cache's serial, even once expired, is the rollback floor:
 *   after a restart, an older document from the source is REGISTRY_ROLLBACK.
 * - Start-up: the HQ keys are loaded, the cache read, the source read (conditionally, with the
 *   cache's ETag) and the newest acceptable document put in force: the source's, or the cache's
 *   while the source fails or sends a refused document. None, or one that does not list this
 *   `pop_id` with this `role` (or fails the role's own check), is a ConfigError naming the
 *   reason code: the process does not start (exit 2).
 * - Run time: the source is read every `poll_interval` and on `refresh` (SIGHUP). A new document
 *   is verified against the one in force (no rollback); refused, the old one stays and
 *   REGISTRY_REFUSED is written once per distinct content; a source that fails (HQ down, a bad
 *   status, a timeout) is REGISTRY_SOURCE_FAILED, once per distinct failure, and the copy in
 *   force keeps serving until its `exp` + `expiry_grace`. Accepted, it is in force,
 *   REGISTRY_UPDATED says what changed and the cache is rewritten.
 * - Serving: `state()` is computed at each call from the registry in force and the clock, so a
 *   registry that stops confirming the role, or runs past `exp` + `expiry_grace`, refuses the
 *   very next request, not the next poll's. Each change of state is an alert event.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { AuditEvent } from '../audit/event.ts';
import { registryEvent } from '../audit/control-events.ts';
import { ConfigError, type ConfigProblem } from '../config/errors.ts';
import { checkReadableFile } from '../config/files.ts';
import type { ControlPlaneConfig } from '../config/schema.ts';
import type { OperationalLog } from '../log/operational.ts';
import { readRegistryCache, writeRegistryCache } from './cache.ts';
import type { Registry, RegistryPop } from './document.ts';
import { fetchRegistry, loadHqTls, SourceError, type FetchResult } from './hq-source.ts';
import { loadRegistryKeys, type RegistryKeySet } from './keys.ts';
import { checkRole, MAX_REGISTRY_BYTES, RegistryError, verifyRegistry } from './verify.ts';

/** What every request gets while this process does not serve (pipeline/reasons.ts). */
export type ServingReason = 'REGISTRY_ROLE_MISMATCH' | 'REGISTRY_POP_UNLISTED' | 'REGISTRY_EXPIRED' | 'REGISTRY_BACKUP_NOT_LISTED';
export type ServingState = { readonly serving: true } | { readonly serving: false; readonly reason: ServingReason; readonly detail: string };

export interface RegistryIdentity {
  readonly popId: string;
  readonly role: 'primary' | 'backup';
  /** The signer's backup (`backup.id`): the registry must list it in this primary's `replicates_to`. */
  readonly backupId?: string;
}

export interface RegistryMonitorDeps {
  readonly now: () => number;
  readonly log: OperationalLog;
  /** Where the REGISTRY_* events go (the audit trail and its metrics). */
  readonly record: (event: AuditEvent) => void;
  /** Told every registry that goes in force, the first one included. */
  readonly onRegistry?: (registry: Registry) => void;
}

export interface RegistryMonitor {
  current(): Registry;
  state(): ServingState;
  /** Re-reads the source now; resolves when it is done. Never rejects. */
  refresh(trigger: string): Promise<void>;
  close(): void;
}

/** Why this process may not serve under `registry` at `now`, or undefined. */
export function servingProblem(registry: Registry, identity: RegistryIdentity, settings: Pick<ControlPlaneConfig, 'expiry_grace'>, now: number): { reason: ServingReason; detail: string } | undefined {
  const role = checkRole(registry, identity.popId, identity.role);
  if (role) return { reason: role.code, detail: role.message };
  if (identity.backupId !== undefined && !registry.byId.get(identity.popId)!.replicates_to.includes(identity.backupId)) {
    return { reason: 'REGISTRY_BACKUP_NOT_LISTED', detail: `registry serial ${registry.payload.serial} does not list backup ${identity.backupId} in ${identity.popId}'s replicates_to` };
  }
  const end = registry.payload.exp * 1000 + settings.expiry_grace;
  if (now >= end) return { reason: 'REGISTRY_EXPIRED', detail: `registry serial ${registry.payload.serial} expired at ${new Date(registry.payload.exp * 1000).toISOString()} (grace ended ${new Date(end).toISOString()})` };
  return undefined;
}

function readRegistryFile(file: string): string {
  if (statSync(file).size > MAX_REGISTRY_BYTES) throw new RegistryError('REGISTRY_MALFORMED', `${file} is larger than ${MAX_REGISTRY_BYTES} bytes`);
  return readFileSync(file, 'utf8');
}

/** The POPs added, removed and changed from `before` to `after`. */
export function registryChanges(before: Registry | undefined, after: Registry): { added: string[]; removed: string[]; changed: string[] } {
  const old = before?.byId ?? new Map<string, RegistryPop>();
  const added = [...after.byId.keys()].filter((id) => !old.has(id));
  const removed = [...old.keys()].filter((id) => !after.byId.has(id));
  const changed = [...after.byId.entries()].filter(([id, pop]) => old.has(id) && JSON.stringify(old.get(id)) !== JSON.stringify(pop)).map(([id]) => id);
  return { added, removed, changed };
}

/** Where documents come from: the file or HQ. `read` throws a RegistryError or a SourceError. */
interface RegistrySource {
  readonly name: 'file' | 'url';
  /** The config key, for the operator. */
  readonly key: 'control_plane.registry_file' | 'control_plane.registry_url';
  /** The file or the URL, for the operator. */
  readonly where: string;
  read(etag: string | undefined): Promise<FetchResult>;
}

function createSource(settings: Readonly<ControlPlaneConfig>, now: () => number): RegistrySource {
  if (settings.registry_file !== undefined && settings.registry_url === undefined) {
    const file = settings.registry_file;
    return {
      name: 'file',
      key: 'control_plane.registry_file',
      where: file,
      read: async () => {
        try {
          return { kind: 'document', text: readRegistryFile(file) };
        } catch (err) {
          if (err instanceof RegistryError) throw err;
          throw new RegistryError('REGISTRY_UNREADABLE', `${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
        }
      },
    };
  }
  const url = settings.registry_url;
  const tls = settings.tls;
  if (url === undefined || settings.registry_file !== undefined || tls === undefined || settings.cache_file === undefined) {
    // check-config (registry/config-checks.ts) names these first; this is the backstop.
    throw new ConfigError([{ path: 'control_plane', message: 'set exactly one of registry_file and registry_url; registry_url needs tls and cache_file' }]);
  }
  return {
    name: 'url',
    key: 'control_plane.registry_url',
    where: url,
    read: async (etag) => {
      let material: ReturnType<typeof loadHqTls>;
      try {
        material = loadHqTls(tls, now());
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        throw new SourceError('REGISTRY_SOURCE_MATERIAL', err.problems.map((p) => `${p.path}: ${p.message}`).join('; '));
      }
      return fetchRegistry(url, material, { etag, timeoutMs: settings.timeout, serverName: tls.server_name });
    },
  };
}

type InForceSource = 'file' | 'url' | 'cache';

/** Reads and verifies the registry at start-up (ConfigError when it does not let this process run), then polls it. */
export async function startRegistryMonitor(settings: Readonly<ControlPlaneConfig>, identity: RegistryIdentity, deps: RegistryMonitorDeps): Promise<RegistryMonitor> {
  const { now, log, record } = deps;
  const keys: RegistryKeySet = loadRegistryKeys(settings.keys, 'control_plane.keys');
  const source = createSource(settings, now);
  if (source.name === 'file') {
    const unreadable = checkReadableFile(source.where, source.key);
    if (unreadable && settings.cache_file === undefined) throw new ConfigError([unreadable]);
  }
  const cacheFile = settings.cache_file;
  const fields = (registry: Registry, from: InForceSource) => ({ source: from, serial: registry.payload.serial, kid: registry.kid, expires: new Date(registry.payload.exp * 1000).toISOString() });

  // The cache: its document may serve (while unexpired) and its serial is the floor either way.
  let floor: Registry | undefined;
  let cached: { registry: Registry; etag: string | undefined; jws: string } | undefined;
  if (cacheFile !== undefined) {
    try {
      const entry = readRegistryCache(cacheFile);
      if (entry) {
        const registry = await verifyRegistry(entry.jws, keys, { now, allowExpired: true });
        floor = registry;
        if (now() < registry.payload.exp * 1000) cached = { registry, etag: entry.etag, jws: entry.jws };
      }
    } catch (err) {
      if (!(err instanceof RegistryError)) throw err;
      log.error({ source: 'registry', refusal: err.code, file: cacheFile }, `registry cache refused, not used: ${err.message}`);
      record(registryEvent('REGISTRY_REFUSED', { source: 'cache', refusal: err.code }, `start-up: ${cacheFile}: ${err.message}`));
    }
  }

  let inForce: Registry | undefined;
  let inForceFrom: InForceSource = source.name;
  let etag: string | undefined;
  let lastText: string | undefined;
  let startProblem: ConfigProblem | undefined;
  // What start-up refused or failed on, so that the first poll does not write the same event again.
  let startRefused: string | undefined;
  let startFailure: string | undefined;
  let startText: string | undefined;
  try {
    const result = await source.read(cached?.etag);
    if (result.kind === 'not-modified') {
      // Sent only with the cache's ETag: HQ confirms the cached document is still its latest.
      inForce = cached!.registry;
      etag = cached!.etag;
      lastText = cached!.jws;
    } else {
      startText = result.text;
      inForce = await verifyRegistry(result.text, keys, { now, ...(floor ? { inForce: floor } : {}) });
      etag = result.etag;
      lastText = result.text;
    }
  } catch (err) {
    if (err instanceof RegistryError) {
      startProblem = { path: source.key, message: `${source.where} is refused (${err.code}): ${err.message}` };
      startRefused = startText !== undefined ? createHash('sha256').update(startText).digest('hex') : `unreadable:${err.message}`;
      record(registryEvent('REGISTRY_REFUSED', { source: source.name, refusal: err.code, ...(cached ? { serial: cached.registry.payload.serial } : {}) }, `start-up: ${err.message}`));
    } else if (err instanceof SourceError) {
      startProblem = { path: source.key, message: `${source.where} failed (${err.code}): ${err.message}` };
      startFailure = `${err.code}:${err.message}`;
      record(registryEvent('REGISTRY_SOURCE_FAILED', { source: source.name, refusal: err.code, ...(cached ? { serial: cached.registry.payload.serial } : {}) }, `start-up: ${err.message}`));
    } else throw err;
    log.error({ source: 'registry', trigger: 'start-up' }, startProblem.message);
  }
  if (!inForce && cached) {
    inForce = cached.registry;
    inForceFrom = 'cache';
    etag = cached.etag;
    lastText = cached.jws;
    log.warn({ source: 'registry', serial: inForce.payload.serial, file: cacheFile }, `the source failed; the cached registry serves until ${new Date(inForce.payload.exp * 1000).toISOString()}`);
  }
  if (!inForce) {
    const floorNote = floor ? ` (the cache ${cacheFile} holds serial ${floor.payload.serial}, which is no longer valid; it stays the rollback floor)` : '';
    throw new ConfigError([{ ...startProblem!, message: `${startProblem!.message}${floorNote}` }]);
  }
  const problem = servingProblem(inForce, identity, settings, now());
  if (problem) {
    const at = { REGISTRY_ROLE_MISMATCH: 'role', REGISTRY_POP_UNLISTED: 'pop_id', REGISTRY_BACKUP_NOT_LISTED: 'backup.id', REGISTRY_EXPIRED: source.key }[problem.reason];
    throw new ConfigError([{ path: at, message: `${problem.reason}: ${problem.detail}; this process does not start in a role the control plane does not confirm` }]);
  }

  // The cache follows the registry in force (and its ETag). At start-up a cache that cannot be
  // written stops the process: without it the rollback floor would not survive a restart.
  let cachedDigest = cached ? `${cached.registry.digest}:${cached.etag ?? ''}` : undefined;
  const saveCache = (registry: Registry, jws: string): Error | undefined => {
    if (cacheFile === undefined) return undefined;
    const key = `${registry.digest}:${etag ?? ''}`;
    if (key === cachedDigest) return undefined;
    try {
      writeRegistryCache(cacheFile, { jws, ...(etag !== undefined ? { etag } : {}) });
      cachedDigest = key;
      return undefined;
    } catch (err) {
      return err as Error;
    }
  };
  const written = saveCache(inForce, lastText!);
  if (written) throw new ConfigError([{ path: 'control_plane.cache_file', message: `${cacheFile} cannot be written: ${(written as NodeJS.ErrnoException).code ?? written.message}; the folder must exist and be writable by this user` }]);

  record(registryEvent('REGISTRY_UPDATED', { ...fields(inForce, inForceFrom), ...registryChanges(undefined, inForce) }, `start-up: ${inForceFrom === 'cache' ? cacheFile : source.where}`));
  log.info({ source: 'registry', serial: inForce.payload.serial, kid: inForce.kid, from: inForceFrom }, 'registry confirms this role');
  deps.onRegistry?.(inForce);

  let current: Registry = inForce;
  let lastRefused: string | undefined = startRefused;
  let lastFailure: string | undefined = startFailure;
  let cacheFailing = false;
  let serving = true;
  let running: Promise<void> | undefined;

  const state = (): ServingState => {
    const found = servingProblem(current, identity, settings, now());
    return found ? { serving: false, ...found } : { serving: true };
  };

  const refuse = (err: RegistryError, digest: string, trigger: string) => {
    if (lastRefused === digest) return; // the same refused content again: one event, not one per poll
    lastRefused = digest;
    log.error({ source: 'registry', refusal: err.code, trigger }, `registry refused, the one in force is kept: ${err.message}`);
    record(registryEvent('REGISTRY_REFUSED', { source: source.name, serial: current.payload.serial, refusal: err.code }, `${trigger}: ${err.message}`));
  };

  const sourceFailed = (err: SourceError, trigger: string) => {
    const key = `${err.code}:${err.message}`;
    if (lastFailure === key) return; // HQ still down the same way: one event, not one per poll
    lastFailure = key;
    const until = new Date(current.payload.exp * 1000 + settings.expiry_grace).toISOString();
    log.error({ source: 'registry', refusal: err.code, trigger }, `${source.where}: ${err.message}; registry serial ${current.payload.serial} stays in force (serving until ${until} at the latest)`);
    record(registryEvent('REGISTRY_SOURCE_FAILED', { source: source.name, serial: current.payload.serial, refusal: err.code }, `${trigger}: ${err.message}`));
  };

  const keepCache = (jws: string) => {
    const failed = saveCache(current, jws);
    if (failed && !cacheFailing) {
      log.error({ source: 'registry', file: cacheFile }, `registry cache cannot be written; retried at every poll: ${(failed as NodeJS.ErrnoException).code ?? failed.message}`);
      record(registryEvent('REGISTRY_CACHE_WRITE_FAILED', { ...fields(current, inForceFrom) }, `${cacheFile}: ${(failed as NodeJS.ErrnoException).code ?? failed.message}`));
    }
    cacheFailing = failed !== undefined;
  };

  const evaluate = () => {
    const t = now();
    const s = state();
    if (s.serving !== serving) {
      serving = s.serving;
      if (s.serving) {
        log.warn({ source: 'registry', serial: current.payload.serial }, 'registry confirms this role again: serving');
        record(registryEvent('REGISTRY_SERVING_RESUMED', { ...fields(current, inForceFrom), state: 'serving' }));
      } else {
        log.error({ source: 'registry', reason: s.reason }, `stopped serving: ${s.detail}`);
        record(registryEvent('REGISTRY_SERVING_STOPPED', { ...fields(current, inForceFrom), state: s.reason }, s.detail));
      }
    }
    const exp = current.payload.exp * 1000;
    if (s.serving && t >= exp - settings.expiry_warning) {
      const detail = t >= exp ? `registry serial ${current.payload.serial} expired at ${new Date(exp).toISOString()}; serving stops at ${new Date(exp + settings.expiry_grace).toISOString()}` : `registry serial ${current.payload.serial} expires at ${new Date(exp).toISOString()}`;
      log.warn({ source: 'registry' }, detail);
      record(registryEvent('REGISTRY_EXPIRING', fields(current, inForceFrom), detail));
    }
  };

  const poll = async (trigger: string): Promise<void> => {
    let result: FetchResult;
    try {
      result = await source.read(etag);
    } catch (err) {
      if (err instanceof SourceError) sourceFailed(err, trigger);
      else if (err instanceof RegistryError) refuse(err, `unreadable:${err.message}`, trigger);
      else throw err;
      return;
    }
    if (lastFailure !== undefined) {
      lastFailure = undefined;
      log.warn({ source: 'registry', trigger }, `${source.where} answers again`);
    }
    if (result.kind === 'not-modified') {
      if (cacheFailing) keepCache(lastText!);
      return;
    }
    const text = result.text;
    if (text === lastText) {
      etag = result.etag;
      keepCache(text);
      return;
    }
    const digest = createHash('sha256').update(text).digest('hex');
    let next: Registry;
    try {
      next = await verifyRegistry(text, keys, { now, inForce: current });
    } catch (err) {
      if (!(err instanceof RegistryError)) throw err;
      refuse(err, digest, trigger);
      return;
    }
    lastText = text;
    etag = result.etag;
    lastRefused = undefined;
    if (next.digest === current.digest) {
      inForceFrom = source.name; // the cached document, now confirmed by the source
      keepCache(text);
      return;
    }
    const previous = current;
    current = next;
    inForceFrom = source.name;
    keepCache(text);
    const changes = registryChanges(previous, next);
    log.info({ source: 'registry', serial: next.payload.serial, previous_serial: previous.payload.serial, ...changes }, 'new registry in force');
    record(registryEvent('REGISTRY_UPDATED', { ...fields(next, source.name), previous_serial: previous.payload.serial, ...changes }, `${trigger}: ${source.where}`));
    deps.onRegistry?.(next);
  };

  const refresh = (trigger: string): Promise<void> => {
    running ??= poll(trigger)
      .then(evaluate)
      .catch((err: unknown) => log.error({ err, source: 'registry' }, 'registry refresh failed; the registry in force is kept'))
      .finally(() => {
        running = undefined;
      });
    return running;
  };
  const timer = setInterval(() => void refresh('interval'), settings.poll_interval);
  timer.unref();
  evaluate();

  return {
    current: () => current,
    state,
    refresh,
    close: () => clearInterval(timer),
  };
}
