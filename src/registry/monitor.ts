/**
 * The registry in force in a running guard or signer, and whether it lets this process serve.
 *
 * - Start-up: the HQ keys and the registry file are read and the document verified; a refused
 *   document, or one that does not list this `pop_id` with this `role` (or fails the role's own
 *   check), is a ConfigError naming the reason code: the process does not start (exit 2).
 * - Run time: the file is re-read every `poll_interval` and on `refresh` (SIGHUP). A new
 *   document is verified against the one in force (no rollback); refused, the old one stays and
 *   REGISTRY_REFUSED is written once per distinct content. Accepted, it is in force and
 *   REGISTRY_UPDATED says what changed.
 * - Serving: `state()` is computed at each call from the registry in force and the clock, so a
 *   registry that stops confirming the role, or runs past `exp` + `expiry_grace`, refuses the
 *   very next request, not the next poll's. Each change of state is an alert event.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { AuditEvent } from '../audit/event.ts';
import { registryEvent } from '../audit/control-events.ts';
import { ConfigError } from '../config/errors.ts';
import { checkReadableFile } from '../config/files.ts';
import type { ControlPlaneConfig } from '../config/schema.ts';
import type { OperationalLog } from '../log/operational.ts';
import type { Registry, RegistryPop } from './document.ts';
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

const SOURCE = 'file';

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

/** Reads and verifies the registry at start-up (ConfigError when it does not let this process run), then polls it. */
export async function startRegistryMonitor(settings: Readonly<ControlPlaneConfig>, identity: RegistryIdentity, deps: RegistryMonitorDeps): Promise<RegistryMonitor> {
  const { now, log, record } = deps;
  const keys: RegistryKeySet = loadRegistryKeys(settings.keys, 'control_plane.keys');
  const file = settings.registry_file;
  const unreadable = checkReadableFile(file, 'control_plane.registry_file');
  if (unreadable) throw new ConfigError([unreadable]);
  let inForce: Registry;
  let lastText: string;
  try {
    lastText = readRegistryFile(file);
    inForce = await verifyRegistry(lastText, keys, { now });
  } catch (err) {
    if (!(err instanceof RegistryError)) throw err;
    throw new ConfigError([{ path: 'control_plane.registry_file', message: `${file} is refused (${err.code}): ${err.message}` }]);
  }
  const problem = servingProblem(inForce, identity, settings, now());
  if (problem) {
    const at = { REGISTRY_ROLE_MISMATCH: 'role', REGISTRY_POP_UNLISTED: 'pop_id', REGISTRY_BACKUP_NOT_LISTED: 'backup.id', REGISTRY_EXPIRED: 'control_plane.registry_file' }[problem.reason];
    throw new ConfigError([{ path: at, message: `${problem.reason}: ${problem.detail}; this process does not start in a role the control plane does not confirm` }]);
  }
  const fields = (registry: Registry) => ({ source: SOURCE, serial: registry.payload.serial, kid: registry.kid, expires: new Date(registry.payload.exp * 1000).toISOString() });
  record(registryEvent('REGISTRY_UPDATED', { ...fields(inForce), ...registryChanges(undefined, inForce) }, `start-up: ${file}`));
  log.info({ source: 'registry', serial: inForce.payload.serial, kid: inForce.kid }, 'registry confirms this role');
  deps.onRegistry?.(inForce);

  let lastRefused: string | undefined;
  let serving = true;
  let running: Promise<void> | undefined;

  const state = (): ServingState => {
    const found = servingProblem(inForce, identity, settings, now());
    return found ? { serving: false, ...found } : { serving: true };
  };

  const refuse = (err: RegistryError, digest: string, trigger: string) => {
    if (lastRefused === digest) return; // the same refused content again: one event, not one per poll
    lastRefused = digest;
    log.error({ source: 'registry', refusal: err.code, trigger }, `registry refused, the one in force is kept: ${err.message}`);
    record(registryEvent('REGISTRY_REFUSED', { source: SOURCE, serial: inForce.payload.serial, refusal: err.code }, `${trigger}: ${err.message}`));
  };

  const evaluate = () => {
    const t = now();
    const s = state();
    if (s.serving !== serving) {
      serving = s.serving;
      if (s.serving) {
        log.warn({ source: 'registry', serial: inForce.payload.serial }, 'registry confirms this role again: serving');
        record(registryEvent('REGISTRY_SERVING_RESUMED', { ...fields(inForce), state: 'serving' }));
      } else {
        log.error({ source: 'registry', reason: s.reason }, `stopped serving: ${s.detail}`);
        record(registryEvent('REGISTRY_SERVING_STOPPED', { ...fields(inForce), state: s.reason }, s.detail));
      }
    }
    const exp = inForce.payload.exp * 1000;
    if (s.serving && t >= exp - settings.expiry_warning) {
      const detail = t >= exp ? `registry serial ${inForce.payload.serial} expired at ${new Date(exp).toISOString()}; serving stops at ${new Date(exp + settings.expiry_grace).toISOString()}` : `registry serial ${inForce.payload.serial} expires at ${new Date(exp).toISOString()}`;
      log.warn({ source: 'registry' }, detail);
      record(registryEvent('REGISTRY_EXPIRING', fields(inForce), detail));
    }
  };

  const poll = async (trigger: string): Promise<void> => {
    let text: string;
    try {
      text = readRegistryFile(file);
    } catch (err) {
      const refusal = err instanceof RegistryError ? err : new RegistryError('REGISTRY_UNREADABLE', `${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      refuse(refusal, `unreadable:${refusal.message}`, trigger);
      return;
    }
    if (text === lastText) return;
    const digest = createHash('sha256').update(text).digest('hex');
    let next: Registry;
    try {
      next = await verifyRegistry(text, keys, { now, inForce });
    } catch (err) {
      if (!(err instanceof RegistryError)) throw err;
      refuse(err, digest, trigger);
      return;
    }
    lastText = text;
    lastRefused = undefined;
    if (next.digest === inForce.digest) return;
    const previous = inForce;
    inForce = next;
    const changes = registryChanges(previous, next);
    log.info({ source: 'registry', serial: next.payload.serial, previous_serial: previous.payload.serial, ...changes }, 'new registry in force');
    record(registryEvent('REGISTRY_UPDATED', { ...fields(next), previous_serial: previous.payload.serial, ...changes }, `${trigger}: ${file}`));
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
    current: () => inForce,
    state,
    refresh,
    close: () => clearInterval(timer),
  };
}
