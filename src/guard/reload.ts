/**
 * What is in force in a running guard, and how it changes without a restart. The guard asks
 * this module for the config, the TLS context and the request pipeline; it never holds them.
 *
 * Three kinds of source reload, each all or nothing, each on SIGHUP and on a change in its
 * files' folders (see reload/source.ts), each result logged and told to `onReload`:
 *  - the config file (SIGHUP and file change; no timer): re-read and fully validated
 *    (`parseConfig`, the same checks as start-up, and who may change the file). Refused: everything stays as it is. Accepted:
 *    a NEW pipeline is built from it (peers, pins, routes, auth settings, token and key file
 *    lists, body limit, upstream) and swapped in one step; requests already running finish on
 *    the pipeline they started on, which is closed once the last of them is done. The server's
 *    limits and the log level change in place; a changed `tls` section builds a new TLS context.
 *    What a running process cannot change (`RESTART_ONLY`) is reported with its key path and
 *    kept.
 *  - the TLS material (SIGHUP, file change, `auth.reload_interval`): tls/reloadable-context.ts.
 *  - each stage's file-backed material (tokens, JWT keys, revoked ids; later signing keys):
 *    the pipeline's own `reload`, which its stages' sources also run by themselves.
 *
 * With peers from the control plane's registry (`control_plane.peers` merge or replace), the
 * peers a pipeline is built with are the config's merged with the registry's in force
 * (registry/peers.ts), and a new registry whose peer set differs builds and swaps a new pipeline
 * the same way a config reload does (`applyRegistry`): the new mTLS stage matches every open
 * connection's certificate afresh, so a removed POP is refused from its next request. When that
 * build fails, the pipeline in force stays, but it refuses the POPs the registry removed or
 * changed (registry/peer-stage.ts): a withdrawn POP is never admitted under its old entry.
 *
 * Shared state (nonce store, rate counters, bans) must come from `PipelineDeps`, made once per
 * process: a stage that made its own would lose it at every config reload.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:https';
import type { SecureContextOptions } from 'node:tls';
import { ConfigError } from '../config/errors.ts';
import { checkConfigFile, parseConfig, type LoadedConfig } from './config.ts';
import type { Config, PeerConfig } from '../config/schema.ts';
import type { OperationalLog } from '../log/operational.ts';
import { createReloadableSource, type ReloadableSource, type ReloadListener, type ReloadTrigger } from '../reload/source.ts';
import { createPeerIndex, type PeerIndex } from '../auth/mtls.ts';
import type { Registry } from '../registry/document.ts';
import { peerChanges, peerEntries, peerSet, type PeerSet } from '../registry/peers.ts';
import type { ClientTrust } from '../tls/client-trust.ts';
import type { TlsMaterial } from '../tls/material.ts';
import { createReloadableTlsContext, type ReloadableTlsContext } from '../tls/reloadable-context.ts';
import { applyListenerLimits } from '../service/listen.ts';
import { buildPipeline, type GuardPipeline, type PipelineDeps } from './pipeline.ts';

/**
 * Top-level keys a running guard keeps until restarted: its listening sockets, its role and
 * identity, and where its shared state lives. A change is reported (per leaf key path) and the
 * value in force is kept; the rest of the reload still applies.
 */
export const RESTART_ONLY = ['role', 'pop_id', 'listen', 'admin', 'store', 'control_plane'] as const;
// upstream.deduplicate too (restartOnlyChanges, keepRestartOnly): its records are shared state.

/** State made once per process and shared by every pipeline generation (a reload keeps it). */
export type SharedPipelineDeps = Pick<PipelineDeps, 'nonceStore' | 'deliveries' | 'sequences' | 'bans' | 'limiters' | 'registry'>;

/** What a new registry did to the peers (`applyRegistry`). */
export type RegistryPeersResult =
  | { readonly outcome: 'unchanged'; readonly set: PeerSet }
  | { readonly outcome: 'applied' | 'failed'; readonly set: PeerSet; readonly added: string[]; readonly removed: string[]; readonly changed: string[]; readonly error?: string };

export interface LiveGuardDeps {
  readonly log: OperationalLog;
  readonly now: () => number;
  /** Nonces, rate counters and bans: never rebuilt by a config reload. */
  readonly shared: SharedPipelineDeps;
  /** Where the config came from: when given, the file itself is reloaded (SIGHUP, file change). */
  readonly source?: LoadedConfig;
  /** Told the result of every reload attempt of every source (metrics). */
  readonly onReload?: ReloadListener;
  /** Whether sources watch their folders (default true). */
  readonly watch?: boolean;
  /** The control plane's registry in force: its peers join the config's per `control_plane.peers`. */
  readonly registry?: () => Registry;
}

/** The pipeline in force for one request; `release` once its response is over. */
export interface PipelineLease {
  readonly pipeline: GuardPipeline;
  release(): void;
}

export interface LiveGuard {
  config(): Readonly<Config>;
  /** TLS options for `https.createServer` at start-up. */
  tlsOptions(): SecureContextOptions;
  /** The server certificate and client CAs in force (for the expiry metrics). */
  tlsMaterial(): TlsMaterial;
  /** Installs the TLS context and limits on the server; later reloads apply to it too. */
  serve(server: Server): void;
  acquire(): PipelineLease;
  /** The bearer secrets of the pipeline in force and their not_after (for the expiry metric). */
  bearerExpiries(): ReturnType<GuardPipeline['bearerExpiries']>;
  /** The client trust in force (CA bundle and CRLs). */
  clientTrust(): ClientTrust;
  /** The peer index in force (a config reload, or a registry with other peers, makes a new one). */
  peers(): PeerIndex;
  /** The peers in force and which of them come from the registry. */
  peerSet(): PeerSet;
  /**
   * Puts the peers of the registry in force now in force (with `control_plane.peers` merge or
   * replace; `unchanged` otherwise). Never throws: a failed build is reported, see the header.
   */
  applyRegistry(): RegistryPeersResult;
  /** Reloads the config, the TLS material and the stages' material, in that order. Never throws. */
  reload(trigger: ReloadTrigger): void;
  /** Stops every watcher and timer and closes every pipeline. */
  close(): void;
}

interface Generation {
  readonly pipeline: GuardPipeline;
  active: number;
  retired: boolean;
}

/** Builds what is in force from the config (throws a ConfigError when unusable: start-up fails). */
export function createLiveGuard(initial: Readonly<Config>, deps: LiveGuardDeps): LiveGuard {
  const { log, now } = deps;
  // control_plane is restart-only: the mode is the start-up config's.
  const mode = initial.control_plane?.peers ?? 'off';
  const registry = mode !== 'off' ? deps.registry : undefined;
  /** The config with the peers in force under the registry (the config itself without one). */
  const withPeers = (c: Readonly<Config>): { config: Readonly<Config>; set: PeerSet } => {
    const set = peerSet(c.peers, registry?.(), c.pop_id, mode);
    return { config: set.peers === c.peers ? c : Object.freeze({ ...c, peers: set.peers as PeerConfig[] }), set };
  };
  // What the registry says each peer is now (`desired`), and what the pipeline in force was
  // built with (`built`): they differ only after a failed build, and then the peer stage refuses.
  let desired: ReadonlyMap<string, string> = new Map();
  let built: ReadonlyMap<string, string> = new Map();
  const pipelineDeps: PipelineDeps = {
    log, now, onReload: deps.onReload, ...deps.shared, clientTrust: () => tls.current().clientTrust,
    ...(registry ? { peersInForce: () => desired } : {}),
  };
  const tlsFor = (config: Readonly<Config>) => createReloadableTlsContext(config.tls, {
    log, now, onReload: deps.onReload, intervalMs: config.auth.reload_interval, watch: deps.watch,
  });

  let config = initial;
  const atStart = withPeers(config);
  let set = atStart.set;
  let peers = createPeerIndex(set.peers);
  desired = built = peerEntries(set.peers);
  let tls: ReloadableTlsContext = tlsFor(config);
  let server: Server | undefined;
  const generations = new Set<Generation>();
  const newGeneration = (pipeline: GuardPipeline): Generation => {
    const g: Generation = { pipeline, active: 0, retired: false };
    generations.add(g);
    return g;
  };
  const retire = (g: Generation) => {
    g.retired = true;
    if (g.active === 0) {
      generations.delete(g);
      g.pipeline.close();
    }
  };
  let current: Generation;
  try {
    current = newGeneration(buildPipeline(atStart.config, pipelineDeps));
  } catch (err) {
    tls.close();
    throw err;
  }

  const apply = (next: LoadedConfig): void => {
    const kept = restartOnlyChanges(config, next.config);
    const effective = keepRestartOnly(config, next.config);
    const merged = withPeers(effective);
    const pipeline = buildPipeline(merged.config, pipelineDeps);
    let nextTls: ReloadableTlsContext | undefined;
    try {
      if (JSON.stringify([config.tls, config.auth.reload_interval]) !== JSON.stringify([effective.tls, effective.auth.reload_interval])) {
        nextTls = tlsFor(effective);
        if (server) nextTls.serve(server);
      }
    } catch (err) {
      nextTls?.close();
      pipeline.close();
      throw err;
    }
    // Nothing below throws: the new state goes in force as a whole.
    if (nextTls) {
      tls.close();
      tls = nextTls;
    }
    if (server) applyServerLimits(server, effective);
    log.level = effective.log.level;
    const previous = current;
    current = newGeneration(pipeline);
    retire(previous);
    config = effective;
    set = merged.set;
    peers = createPeerIndex(set.peers);
    desired = built = peerEntries(set.peers);
    for (const path of kept) log.warn({ source: 'config', key: path }, 'this key changes only with a restart: the value in force is kept');
    for (const w of next.warnings) log.warn({ source: 'config', key: w.path }, w.message);
  };

  let configSource: ReloadableSource<LoadedConfig> | undefined;
  if (deps.source) {
    const { file } = deps.source;
    let first = true;
    let inForce: LoadedConfig = deps.source;
    try {
      configSource = createReloadableSource<LoadedConfig>({
        name: 'config',
        load: () => {
          if (first) {
            first = false; // the config start-up already read and checked
            return { value: inForce, fingerprint: inForce.fingerprint };
          }
          // Before the text: a file others can change is refused even while its text is the
          // one in force, so that the chmod itself is an alert (CONFIG_RELOAD_FAILED).
          const unsafe = checkConfigFile(file);
          if (unsafe) throw new ConfigError([unsafe]);
          let text: string;
          try {
            text = readFileSync(file, 'utf8');
          } catch (err) {
            throw new ConfigError([{ path: '', message: `cannot read config file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }]);
          }
          // An unchanged text is not parsed again: its credential files reload by themselves,
          // and a problem in one of them is theirs to report, not the config's.
          const fingerprint = createHash('sha256').update(text).digest('hex');
          if (fingerprint === inForce.fingerprint) return { value: inForce, fingerprint };
          return { value: parseConfig(text, file), fingerprint };
        },
        paths: [file],
        apply,
        onSwap: (next) => {
          inForce = next;
        },
        log,
        onReload: deps.onReload,
        intervalMs: 0,
        watch: deps.watch,
      });
    } catch (err) {
      tls.close();
      current.pipeline.close();
      throw err;
    }
  }

  return {
    config: () => config,
    tlsOptions: () => tls.current().secureContext,
    tlsMaterial: () => tls.current(),
    serve(target) {
      tls.serve(target);
      applyServerLimits(target, config);
      server = target;
    },
    bearerExpiries: () => current.pipeline.bearerExpiries(),
    acquire() {
      const g = current;
      g.active += 1;
      let released = false;
      return {
        pipeline: g.pipeline,
        release() {
          if (released) return;
          released = true;
          g.active -= 1;
          if (g.retired && g.active === 0) {
            generations.delete(g);
            g.pipeline.close();
          }
        },
      };
    },
    clientTrust: () => tls.current().clientTrust,
    peers: () => peers,
    peerSet: () => set,
    applyRegistry() {
      if (!registry) return { outcome: 'unchanged', set };
      const merged = withPeers(config);
      const entries = peerEntries(merged.set.peers);
      const same = (a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>) => a.size === b.size && [...a].every(([id, e]) => b.get(id) === e);
      if (same(entries, built)) {
        // Nothing to build: a registry that changed only other POPs, or took back a change that
        // could not be built (then what is in force again is reported against what was pending).
        const undone = !same(desired, built);
        const changes = peerChanges(desired, built);
        desired = built;
        set = merged.set;
        return undone ? { outcome: 'applied', set, ...changes } : { outcome: 'unchanged', set };
      }
      // What changes against the pipeline in force (after a failed build, a retry reports it all).
      const changes = peerChanges(built, entries);
      // From here the registry's word is in force for the peer stage, whether the build succeeds or not.
      desired = entries;
      set = merged.set;
      let pipeline: GuardPipeline;
      try {
        pipeline = buildPipeline(merged.config, pipelineDeps);
      } catch (err) {
        const error = err instanceof ConfigError ? err.problems.map((p) => `${p.path}: ${p.message}`).join('; ') : String(err);
        log.error({ source: 'registry', err: err instanceof ConfigError ? undefined : err }, `the registry's peers cannot be put in force; its removed and changed POPs are refused meanwhile: ${error}`);
        return { outcome: 'failed', set, ...changes, error };
      }
      const previous = current;
      current = newGeneration(pipeline);
      retire(previous);
      peers = createPeerIndex(set.peers);
      built = entries;
      return { outcome: 'applied', set, ...changes };
    },
    reload(trigger) {
      configSource?.reload(trigger);
      tls.reload(trigger);
      current.pipeline.reload(trigger);
    },
    close() {
      configSource?.close();
      tls.close();
      for (const g of generations) g.pipeline.close();
      generations.clear();
    },
  };
}

/** The server settings that follow the config; Node reads each of them per connection or per check. */
export function applyServerLimits(server: Server, config: Readonly<Config>): void {
  applyListenerLimits(server, config.limits);
  // The TLS gate enforces limits.max_connections itself, with an audit event (guard/tls-gate.ts);
  // the runtime's own cap stays above it as a backstop (it drops sockets silently).
  server.maxConnections = config.limits.max_connections + 64;
}

/** The leaf key paths under RESTART_ONLY whose values differ between two configs. */
export function restartOnlyChanges(inForce: Readonly<Config>, next: Readonly<Config>): string[] {
  const out: string[] = [];
  for (const key of RESTART_ONLY) diffPaths((inForce as Record<string, unknown>)[key], (next as Record<string, unknown>)[key], key, out);
  diffPaths(inForce.upstream?.deduplicate, next.upstream?.deduplicate, 'upstream.deduplicate', out);
  return out;
}

/** `next` with the RESTART_ONLY keys of the config in force. */
export function keepRestartOnly(inForce: Readonly<Config>, next: Readonly<Config>): Readonly<Config> {
  const out: Record<string, unknown> = { ...next };
  for (const key of RESTART_ONLY) {
    if (key in inForce) out[key] = (inForce as Record<string, unknown>)[key];
    else delete out[key];
  }
  // The delivery records live in the shared state, sized at start-up (store/create.ts).
  if (next.upstream) {
    const { deduplicate: _next, ...upstream } = next.upstream;
    out.upstream = inForce.upstream?.deduplicate !== undefined ? { ...upstream, deduplicate: inForce.upstream.deduplicate } : upstream;
  }
  return Object.freeze(out) as Readonly<Config>;
}

function diffPaths(a: unknown, b: unknown, path: string, out: string[]): void {
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isObject(a) && isObject(b)) {
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) diffPaths(a[key], b[key], `${path}.${key}`, out);
    return;
  }
  if (JSON.stringify(a) !== JSON.stringify(b)) out.push(path);
}
