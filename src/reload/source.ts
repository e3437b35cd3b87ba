/**
 * A reloadable, file-backed source of material (bearer tokens, JWT keys, revoked ids; later
 * certificates and signing keys): load + validate as one step, swap atomically, and reload on
 * demand (SIGHUP), on file change and on a timer.
 *
 * - All or nothing: `load` reads and checks everything; if it throws, the material in force
 *   stays in force and the problem goes to the operational log. A reload never fails open and
 *   never crashes the process.
 * - Watching: the DIRECTORY of each path is watched, not the file. Kubernetes updates a mounted
 *   Secret by swapping a `..data` symlink, so the file itself is never written, and a watch on
 *   the old inode would go quiet for good after the first update.
 * - The timer is the fallback for file systems without change events (and for missed ones);
 *   an unchanged result (same fingerprint) is not swapped (and logged at debug level only when
 *   the timer or a file event found it, so that the periodic check is quiet).
 * - Applying: material that must be installed somewhere (a TLS context, a new pipeline) is
 *   installed by `apply` BEFORE the swap; when it throws, the reload is refused like invalid
 *   material, so that what the source says is in force and what is installed never differ.
 * - Every attempt (ok, unchanged, failed) goes to `onReload`, one place for metrics.
 * - Removal is a new state, not a failure: a loader is told whether it loads at start-up
 *   (`'start'`: a missing file is a configuration error, a typo must not start a guard that
 *   admits nobody) or again (`'reload'`: a deleted credential file is a removal and its
 *   credentials are refused from then on). Each load lists the files its credentials came from
 *   (`inventory`); a swap reports those that dropped out (`removed`), so that the audit trail
 *   says which credential of which POP was cut off.
 */
import { statSync, watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import { ConfigError } from '../config/errors.ts';
import type { OperationalLog } from '../log/operational.ts';

export interface Loaded<T> {
  readonly value: T;
  /** Identifies the content (e.g. a hash over the files): equal fingerprints mean nothing changed. */
  readonly fingerprint: string;
  /** The credential files that hold material in force now (none for material without removals). */
  readonly inventory?: readonly HeldFile[];
}

/** A file that holds credential material: which config key names it, and whose it is. */
export interface HeldFile {
  /** The key path, e.g. `peers[0].token_files[1]` or `auth.jwt.public_keys[0].path`. */
  readonly key: string;
  readonly file: string;
  /** The POP the material authenticates, when it is bound to one. */
  readonly pop?: string;
}

/** First load (a missing file is an error) or a later one (a deleted credential file is a removal). */
export type LoadPhase = 'start' | 'reload';

export interface ReloadableSourceOptions<T> {
  /** For the operational log, e.g. "bearer tokens". */
  readonly name: string;
  /** Reads and validates the material; throws (preferably a ConfigError) when it is not usable. */
  readonly load: (phase: LoadPhase) => Loaded<T>;
  /** Files or directories the material comes from; their directories are watched. */
  readonly paths: readonly string[];
  /**
   * Installs the new value where it is used, before it is in force. Throwing refuses the reload
   * (all or nothing): the previous value stays in force and the next trigger tries again.
   */
  readonly apply?: (next: T, previous: T) => void;
  /** Called after a new value is in force (e.g. to clear a cache derived from it). */
  readonly onSwap?: (next: T, previous: T) => void;
  /** Called with the result of every reload attempt (not the initial load): metrics. */
  readonly onReload?: ReloadListener;
  readonly log: OperationalLog;
  /** Periodic reload, in ms; 0 turns the timer off. */
  readonly intervalMs: number;
  /** Quiet time after a change event before reloading (events come in bursts), in ms. Default 100. */
  readonly debounceMs?: number;
  /** Whether to watch the directories (default true). */
  readonly watch?: boolean;
}

export type ReloadTrigger = 'SIGHUP' | 'file change' | 'interval' | 'request';

export interface ReloadResult {
  readonly changed: boolean;
  /** The problems when the new material was refused (the old one stays in force). */
  readonly error?: string;
  /** Files whose material the swap took out of force (deleted, emptied, no longer in a key folder). */
  readonly removed?: readonly HeldFile[];
}

/** One reload attempt of one source, as reported to `onReload` (e.g. a `reloads` counter). */
export interface ReloadReport {
  /** The source's name, e.g. "tls", "config", "bearer tokens": a small fixed set. */
  readonly source: string;
  readonly trigger: ReloadTrigger;
  readonly outcome: 'ok' | 'unchanged' | 'failed';
  /** Why it failed (operator-facing: may name files, never a secret). */
  readonly error?: string;
  /** On `ok`: the files whose material is no longer in force (see ReloadResult). */
  readonly removed?: readonly HeldFile[];
}

export type ReloadListener = (report: ReloadReport) => void;

/** What turns a ReloadResult into its outcome. */
export function reloadOutcome(result: ReloadResult): ReloadReport['outcome'] {
  return result.error !== undefined ? 'failed' : result.changed ? 'ok' : 'unchanged';
}

export interface ReloadableSource<T> {
  /** The material in force. */
  current(): T;
  /** Loads now; keeps the old material when the new one is refused. Never throws. */
  reload(trigger: ReloadTrigger): ReloadResult;
  /** How many times new material was swapped in (starts at 0). */
  generation(): number;
  /** Stops watching and the timer. */
  close(): void;
}

/**
 * Loads once (throwing when the initial material is unusable: the caller fails start-up with
 * it) and then keeps the material current.
 */
export function createReloadableSource<T>(options: ReloadableSourceOptions<T>): ReloadableSource<T> {
  const { name, log } = options;
  let loaded = options.load('start');
  let swaps = 0;
  let closed = false;
  const watchers: FSWatcher[] = [];
  let debounce: NodeJS.Timeout | undefined;

  const report = (trigger: ReloadTrigger, result: ReloadResult): ReloadResult => {
    try {
      options.onReload?.({
        source: name,
        trigger,
        outcome: reloadOutcome(result),
        ...(result.error !== undefined ? { error: result.error } : {}),
        ...(result.removed !== undefined ? { removed: result.removed } : {}),
      });
    } catch (err) {
      log.error({ source: name, err }, 'the reload listener failed');
    }
    return result;
  };

  const refuse = (trigger: ReloadTrigger, err: unknown): ReloadResult => {
    const error = err instanceof ConfigError
      ? err.problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; ')
      : String((err as Error)?.message ?? err);
    log.error({ source: name, trigger, problems: error }, `reload of ${name} refused: the material in force stays in force`);
    return report(trigger, { changed: false, error });
  };

  const reload = (trigger: ReloadTrigger): ReloadResult => {
    if (closed) return { changed: false };
    let next: Loaded<T>;
    try {
      next = options.load('reload');
    } catch (err) {
      return refuse(trigger, err);
    }
    if (next.fingerprint === loaded.fingerprint) {
      const quiet = trigger === 'interval' || trigger === 'file change';
      log[quiet ? 'debug' : 'info']({ source: name, trigger, changed: false }, `${name} reloaded: unchanged`);
      return report(trigger, { changed: false });
    }
    const previous = loaded.value;
    try {
      options.apply?.(next.value, previous);
    } catch (err) {
      return refuse(trigger, err);
    }
    const removed = droppedOut(loaded.inventory, next.inventory);
    loaded = next; // the one atomic step: requests read current() and see the old or the new set, never a mix
    swaps += 1;
    try {
      options.onSwap?.(next.value, previous);
    } catch (err) {
      log.error({ source: name, err }, `after reloading ${name}: a dependent cache could not be updated`);
    }
    if (removed.length > 0) {
      log.warn({ source: name, trigger, changed: true, generation: swaps, removed }, `${name} reloaded: material removed, its credentials are refused from now on`);
      return report(trigger, { changed: true, removed });
    }
    log.info({ source: name, trigger, changed: true, generation: swaps }, `${name} reloaded`);
    return report(trigger, { changed: true });
  };

  if (options.watch ?? true) {
    // A path that is itself a directory (a key folder) is watched as it is.
    const dirs = new Set(options.paths.map((p) => (isDirectory(p) ? p : dirname(p))));
    for (const dir of dirs) {
      try {
        const w = watch(dir, { persistent: false }, () => {
          clearTimeout(debounce);
          debounce = setTimeout(() => reload('file change'), options.debounceMs ?? 100);
          debounce.unref();
        });
        w.on('error', (err) => {
          log.warn({ source: name, dir, err: String(err) }, `watching ${dir} failed; the periodic reload continues`);
          w.close();
        });
        watchers.push(w);
      } catch {
        // Not a directory, or gone: the periodic reload covers it. (A file path's own directory
        // always exists at start-up, since the initial load read the file.)
      }
    }
  }

  const timer = options.intervalMs > 0 ? setInterval(() => reload('interval'), options.intervalMs) : undefined;
  timer?.unref();

  return {
    current: () => loaded.value,
    reload,
    generation: () => swaps,
    close() {
      closed = true;
      clearTimeout(debounce);
      if (timer) clearInterval(timer);
      for (const w of watchers) w.close();
    },
  };
}

/** The files of `before` that are not in `after` (same key path and file). */
function droppedOut(before: readonly HeldFile[] | undefined, after: readonly HeldFile[] | undefined): HeldFile[] {
  if (!before || before.length === 0) return [];
  const kept = new Set((after ?? []).map((h) => `${h.key}\0${h.file}`));
  return before.filter((h) => !kept.has(`${h.key}\0${h.file}`));
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
