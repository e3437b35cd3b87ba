/**
 * Bans after repeated failures. Every request outcome (and every connection refused at the TLS
 * layer or by the HTTP parser) is handed to `recordOutcome` from the one place that knows it
 * (guard/guard.ts); the reasons that count are the reason table's `bans` column (`countsTowardBan`).
 *
 * Who a failure counts against (docs/limits.md, "Who gets banned"): the POP, when the credential
 * naming it was fully verified (a certificate whose chain, name and pins verified against the
 * peers in force now, or a bearer secret / JWT that verified); otherwise the client address
 * only. So nobody can get a POP banned without holding one of its credentials, and failures from
 * a shared address (NAT, a load balancer) never ban the POPs behind it. For the same reason an
 * address ban does not cut a POP that presents a fully verified certificate: address bans are
 * for unauthenticated traffic.
 *
 * `limits.ban_after_failures` failures within `limits.failure_window` (rate-limiter-flexible
 * counters, a fixed window from the first failure) ban the key for `limits.ban_duration`.
 * Ban records carry their end time on the injected clock (`now()`), so expiry is decided here,
 * not by a store's timer, and tests can move time on. An alert event is written when a ban
 * starts and when it ends; exactly one guard replica writes each (the store's atomic add and
 * remove decide which).
 *
 * A banned key is refused twice over: at the TLS layer (`bannedAtHandshake`, synchronous,
 * against the bans this process knows of) and at steps 2 and 5 of the pipeline (limits/ban-stages.ts,
 * authoritative, against the store). The local view is re-read from the store every sweep
 * (every configured POP, and every key it already holds): a POP banned or a ban lifted on
 * another replica is enforced at the handshake within `SWEEP_INTERVAL_MS`; an address banned
 * elsewhere, from its first request here (403) on.
 */
import { LRUCache } from 'lru-cache';
import { entryBound } from '../core/lru.ts';
import type { RateLimiterRes } from 'rate-limiter-flexible';
import type { AuditLog } from '../audit/audit-log.ts';
import { banEvent } from '../audit/control-events.ts';
import type { Config } from '../config/schema.ts';
import type { OperationalLog } from '../log/operational.ts';
import type { ConnectionInfo, PeerCertificateInfo } from '../pipeline/context.ts';
import { REASONS, type Reason } from '../pipeline/reasons.ts';
import type { BanRecord, BanStore } from '../store/ban-store.ts';
import { connectionAddressKey, isPopKey, popKey } from '../store/client-key.ts';

/** How often ended bans are reported and the local view is refreshed. */
export const SWEEP_INTERVAL_MS = 1000;
/**
 * A banned address may still start one handshake this often (the rest are cut at accept): a POP
 * behind that address (NAT) that has not connected lately can then show its verified certificate,
 * and an attacker gets one handshake a second, not one per connection.
 */
export const BANNED_ADDRESS_PROBE_MS = 1000;
/** Most ended bans handled per sweep (the rest wait for the next one). */
const SWEEP_BATCH = 500;

/**
 * Whether a refusal counts toward a ban: the `bans` column of the reason table
 * (pipeline/reasons.ts), where the rules are written down and tested (only client errors, never
 * what an honest client meets under load or network trouble, never a ban refusal itself).
 * Ban-administration refusals on the admin listener (ADMIN_*) are not counted either, and never
 * reach this function: the admin listener has no ban check (a ban there would lock operators out
 * of lifting bans), and the admin token, 32 or more random bytes, is beyond guessing anyway.
 */
export function countsTowardBan(reason: Reason): boolean {
  return REASONS[reason].bans;
}

/** Names the configured POP a verified certificate stands for (pins included), against the peers in force. */
export interface CertificatePopIndex {
  match(cert: PeerCertificateInfo): { readonly pop: string } | { readonly reason: Reason };
}

export interface BanDeps {
  readonly now: () => number;
  readonly audit: AuditLog;
  readonly log: OperationalLog;
  /**
   * The peer index of the config in force (it changes on reload: a pin added then makes a
   * certificate that no longer matches it name nobody, so it can no longer get its POP banned).
   */
  readonly peers: () => CertificatePopIndex;
}

export interface BanState {
  readonly bans: BanStore;
  readonly limiters: {
    readonly popFailures: FailureCounter;
    readonly addressFailures: FailureCounter;
  };
}

interface FailureCounter {
  penalty(key: string, points?: number): Promise<RateLimiterRes>;
  delete(key: string): Promise<boolean>;
}

export class Bans {
  private readonly threshold: number;
  private readonly durationMs: number;
  private readonly now: () => number;
  /** Bans this process knows to be active: key -> until. Bounded; the store stays authoritative. */
  private readonly local: LRUCache<string, number>;
  /** The POP a connection's certificate names, memoised per connection and peer index. */
  private readonly connectionPops = new WeakMap<ConnectionInfo, { index: CertificatePopIndex; pop: string | undefined }>();
  /**
   * Client addresses from which a POP connected with a fully verified certificate lately: an
   * address ban does not cut them at accept (the handshake has to show who connects), so that a
   * POP behind a shared address keeps working. Bounded; entries last one ban duration.
   */
  private readonly verifiedAddresses: LRUCache<string, number>;
  /** When each banned address last got its one handshake through (BANNED_ADDRESS_PROBE_MS). */
  private readonly probes: LRUCache<string, number>;
  /** Every configured POP's key, re-read each sweep (bounded by the peer list). */
  private readonly peerKeys: readonly string[];
  private timer: NodeJS.Timeout | undefined;
  private sweeping = false;
  private lastStoreError: string | undefined;

  constructor(
    config: Readonly<Pick<Config, 'limits' | 'peers'>>,
    private readonly state: BanState,
    private readonly deps: BanDeps,
  ) {
    this.threshold = config.limits.ban_after_failures;
    this.durationMs = config.limits.ban_duration;
    this.now = deps.now;
    this.local = new LRUCache<string, number>(entryBound(config.limits.max_tracked_addresses));
    this.verifiedAddresses = new LRUCache<string, number>(entryBound(config.limits.max_tracked_addresses));
    this.probes = new LRUCache<string, number>(entryBound(config.limits.max_tracked_addresses));
    this.peerKeys = config.peers.map((p) => popKey(p.id));
  }

  /** Starts the sweep that reports ended bans and refreshes the local view. */
  start(): void {
    this.timer ??= setInterval(() => void this.sweep(), SWEEP_INTERVAL_MS).unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * The POP the connection's verified certificate names under the peers in force, memoised per
   * connection until the peer index changes (a config reload).
   */
  connectionPop(conn: ConnectionInfo): string | undefined {
    // Only a certificate that verified under the trust in force names a POP (`verifiedTrust` is
    // set by the TLS gate and the connection-trust stage, cleared when a re-check fails): the
    // names of one that did not verify are anyone's to write, and never count against a POP.
    if (!conn.peer || conn.verifiedTrust === undefined) return undefined;
    const index = this.deps.peers();
    const memo = this.connectionPops.get(conn);
    if (memo && memo.index === index) return memo.pop;
    const match = index.match(conn.peer);
    const pop = 'pop' in match ? match.pop : undefined;
    this.connectionPops.set(conn, { index, pop });
    return pop;
  }

  /**
   * The one key a connection's request is known by: the POP when a credential naming it was
   * fully verified (`pop`, or the connection's certificate), else the client address.
   */
  connectionKeys(conn: ConnectionInfo, pop?: string): string[] {
    const p = pop ?? this.connectionPop(conn);
    return [p !== undefined ? popKey(p) : connectionAddressKey(conn)];
  }

  /** A POP connected with a fully verified certificate from this address (see verifiedAddresses). */
  noteVerifiedAddress(conn: ConnectionInfo): void {
    this.verifiedAddresses.set(connectionAddressKey(conn), this.now() + this.durationMs);
  }

  /** Whether a POP connected from this address with a verified certificate lately. */
  isVerifiedAddress(addressKey: string): boolean {
    const until = this.verifiedAddresses.get(addressKey);
    return until !== undefined && until > this.now();
  }

  /**
   * At accept, before the handshake, synchronously: an active ban of this address that this
   * process knows of, unless a POP connected from it with a verified certificate lately, or this
   * is the address's one handshake of the second (BANNED_ADDRESS_PROBE_MS): then the handshake
   * decides (bannedAtHandshake), and only a verified POP gets through.
   */
  bannedAtAccept(addressKey: string): { key: string; until: number } | undefined {
    const now = this.now();
    if (this.isVerifiedAddress(addressKey)) return undefined;
    const until = this.knownBan(addressKey, now);
    if (until === undefined) return undefined;
    const last = this.probes.get(addressKey);
    if (last === undefined || now - last >= BANNED_ADDRESS_PROBE_MS) {
      this.probes.set(addressKey, now);
      return undefined; // this one handshake decides (bannedAtHandshake)
    }
    return { key: addressKey, until };
  }

  /** After the handshake, synchronously: an active ban of the certificate's POP, or of the address when there is no verified POP. */
  bannedAtHandshake(conn: ConnectionInfo): { key: string; until: number } | undefined {
    const now = this.now();
    for (const key of this.connectionKeys(conn)) {
      const until = this.knownBan(key, now);
      if (until !== undefined) return { key, until };
    }
    return undefined;
  }

  /** The end of an active ban of `key` as this process knows it (the store itself when it is in memory). */
  private knownBan(key: string, now: number): number | undefined {
    const getNow = this.state.bans.getNow;
    if (getNow) {
      const [record] = getNow([key]);
      return record && record.until > now ? record.until : undefined;
    }
    const until = this.local.get(key);
    return until !== undefined && until > now ? until : undefined;
  }

  /**
   * The authoritative check: the first active ban among `keys`, or undefined. Ended bans found
   * on the way are reported. Rejects when the store cannot answer (the caller fails closed).
   */
  async check(keys: readonly string[]): Promise<BanRecord | undefined> {
    return this.judge(keys, await this.state.bans.get(keys));
  }

  /**
   * The same check answered synchronously when the store is in this process (memory); `null`
   * when only the asynchronous check() can answer (a remote store).
   */
  checkNow(keys: readonly string[]): BanRecord | undefined | null {
    const getNow = this.state.bans.getNow;
    return getNow ? this.judge(keys, getNow(keys)) : null;
  }

  private judge(keys: readonly string[], records: ReadonlyArray<BanRecord | undefined>): BanRecord | undefined {
    const now = this.now();
    let active: BanRecord | undefined;
    records.forEach((record, i) => {
      const key = keys[i]!;
      if (!record) {
        this.local.delete(key);
      } else if (record.until > now) {
        this.local.set(key, record.until);
        active ??= record;
      } else {
        void this.end(key);
      }
    });
    return active;
  }

  /** Counts a refusal against the verified POP, or else the client's address, and bans it at the threshold. Never throws. */
  recordOutcome(reason: Reason, conn: ConnectionInfo, pop: string | undefined): void {
    if (!countsTowardBan(reason)) return;
    for (const key of this.connectionKeys(conn, pop)) {
      const counter = isPopKey(key) ? this.state.limiters.popFailures : this.state.limiters.addressFailures;
      counter.penalty(key).then(
        (res) => (res.consumedPoints >= this.threshold ? this.ban(key, res.consumedPoints, reason, counter) : undefined),
        (err: unknown) => this.storeError(err),
      ).catch((err: unknown) => this.storeError(err));
    }
  }

  private async ban(key: string, failures: number, reason: Reason, counter: FailureCounter): Promise<void> {
    const now = this.now();
    const [existing] = await this.state.bans.get([key]);
    if (existing && existing.until > now) {
      this.local.set(key, existing.until);
      return;
    }
    if (existing) await this.end(key);
    const record: BanRecord = { key, since: now, until: now + this.durationMs, failures, reason };
    if (await this.state.bans.add(record)) {
      this.local.set(key, record.until);
      this.deps.audit.write(banEvent('LIMIT_BAN_STARTED', record));
    }
    // The next failures after this ban ends start a fresh count.
    await counter.delete(key);
  }

  /** Removes an ended ban and reports it, when this process is the one that removed it. */
  private async end(key: string): Promise<void> {
    try {
      const record = await this.state.bans.remove(key);
      this.local.delete(key);
      if (record) this.deps.audit.write(banEvent('LIMIT_BAN_ENDED', record));
    } catch (err) {
      this.storeError(err);
    }
  }

  /** Active bans (at most `limit`), for GET /bans. Rejects when the store cannot answer. */
  async list(limit = 10_000): Promise<BanRecord[]> {
    const now = this.now();
    return (await this.state.bans.list(limit)).filter((r) => r.until > now);
  }

  /**
   * Lifts a ban (DELETE /bans/{key}) and clears the key's failure count, so that it starts
   * afresh. Returns the lifted record, or undefined when the key was not banned. The caller
   * writes the audit event (it knows the operator's request).
   */
  async lift(key: string): Promise<BanRecord | undefined> {
    const record = await this.state.bans.remove(key);
    this.local.delete(key);
    const counter = isPopKey(key) ? this.state.limiters.popFailures : this.state.limiters.addressFailures;
    await counter.delete(key);
    return record && record.until > this.now() ? record : undefined;
  }

  /** Reports ended bans and re-reads the local view from the store. */
  async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      for (const key of await this.state.bans.expired(this.now(), SWEEP_BATCH)) await this.end(key);
      const known = [...new Set([...this.peerKeys, ...this.local.keys()])];
      if (known.length > 0) await this.check(known);
      this.lastStoreError = undefined;
    } catch (err) {
      this.storeError(err);
    } finally {
      this.sweeping = false;
    }
  }

  private storeError(err: unknown): void {
    const message = (err as Error)?.message ?? String(err);
    if (message !== this.lastStoreError) this.deps.log.warn({ err: message }, 'ban bookkeeping failed: the store did not answer');
    this.lastStoreError = message;
  }
}
