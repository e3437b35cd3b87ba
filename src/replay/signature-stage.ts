/**
 * Step 7 when `auth.methods` lists `signature`: the Standard Webhooks headers, the timestamp
 * window, the signature by a key of the authenticated POP, and the nonce, in that order.
 *
 * - The timestamp must be within `replay.max_age` of the guard's clock, in both directions.
 * - At most `replay.max_signature_entries` entries (400 beyond, before any crypto).
 * - One entry verifying with a key of the authenticated POP suffices (rotation). Only that POP's
 *   keys are tried: at most entries x keys checks per request, however many POPs and keys are
 *   configured. (Trying the other POPs' keys, to tell a request relayed from another POP, made a
 *   refused request cost entries x every key in the config; a key of another POP is now simply
 *   not a key of this one: SIGNATURE_MISMATCH.) Large bodies are checked without holding the
 *   event loop: HMACs in slices, Ed25519 off the main thread (signature.ts).
 * - The nonce (POP, webhook-id) is recorded only after the signature verifies, so nobody can
 *   burn a POP's future ids; it is kept for 2 x max_age (+1 ms), the whole time its timestamp
 *   can be inside the window. A full store or an unavailable one refuses (503), never waves through.
 */
import { createHash } from 'node:crypto';
import type { CredentialStage } from '../pipeline/credential-stage.ts';
import { ConfigError } from '../config/errors.ts';
import { REPLAY_DEFAULTS, type AuthorisedPeer, type Config } from '../config/schema.ts';
import type { OperationalLog } from '../log/operational.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { need } from '../pipeline/stage.ts';
import { Rejection } from '../pipeline/reasons.ts';
import { createReloadableSource, type Loaded, type LoadPhase, type ReloadListener } from '../reload/source.ts';
import { StoreUnavailableError, type NonceResult, type NonceStore } from '../store/store.ts';
import { readPeerSigningKeys } from './keys.ts';
import { findVerifyingKey, parseSignatureHeaders, signedPrefix, type VerificationWork, type VerifyKey } from './signature.ts';

export interface SignatureStageDeps {
  /** Wall clock, ms since the epoch; the same clock the nonce store expires by. */
  readonly now: () => number;
  readonly nonceStore: NonceStore;
  readonly log: OperationalLog;
  readonly onReload?: ReloadListener;
  /** Told what each request's verification cost, key by key (tests count the work with it). */
  readonly onWork?: (work: VerificationWork) => void;
  /** Signed content from this many bytes on is checked in slices (HMAC) or off the main thread (Ed25519); default OFF_THREAD_MIN_BYTES. */
  readonly offThreadMinBytes?: number;
  /**
   * With upstream.deduplicate: a webhook-id this POP already used is not refused here but marked
   * (`ctx.nonceReused`) for the delivery record to judge (proxy/delivery.ts): the same batch
   * gets its recorded outcome, anything else REPLAY_NONCE_REUSED. The forward stage never
   * forwards a marked request. Default false.
   */
  readonly deferReusedNonce?: boolean;
}

/** Every peer's verification keys, by POP id. */
interface SigningKeySet {
  readonly keys: ReadonlyMap<string, readonly VerifyKey[]>;
}

/**
 * Reads every peer's keys, all or nothing (a ConfigError names every unusable file). At
 * `'reload'` a deleted key file is a removal: requests signed with its key are refused from the swap on.
 */
export function loadSigningKeySet(peers: readonly AuthorisedPeer[], phase: LoadPhase = 'start'): Loaded<SigningKeySet> {
  const { keys, problems, inventory } = readPeerSigningKeys(peers, phase);
  if (problems.length > 0) throw new ConfigError(problems);
  const fingerprint = createHash('sha256').update(JSON.stringify([...keys].map(([pop, list]) => [pop, list.map((k) => k.id)]))).digest('hex');
  return { value: { keys }, fingerprint, inventory };
}

/**
 * Reads every peer's keys now (a ConfigError if any is unusable: fails at start-up), then keeps
 * them current like the other credentials: SIGHUP, a change in their folders, and every
 * `auth.reload_interval`; a new set that fails to load keeps the one in force, a deleted key
 * file takes its key out of force.
 */
export function createSignatureStage(config: Pick<Config, 'peers' | 'replay' | 'auth'>, deps: SignatureStageDeps): CredentialStage {
  const source = createReloadableSource({
    name: 'signing keys',
    load: (phase) => loadSigningKeySet(config.peers, phase),
    paths: config.peers.flatMap((p) => p.signing_keys),
    log: deps.log,
    onReload: deps.onReload,
    intervalMs: config.auth.reload_interval,
  });
  const { max_age: maxAge, max_signature_entries: maxEntries } = config.replay ?? REPLAY_DEFAULTS;
  // A timestamp is accepted from max_age before it to max_age after it, edges included; the
  // store counts a nonce live while its expiry is still ahead, so the 2 x max_age span needs 1 ms more.
  const nonceTtl = 2 * maxAge + 1;
  const { now, nonceStore } = deps;
  const verifyOptions = { onWork: deps.onWork, offThreadMinBytes: deps.offThreadMinBytes };

  return {
    name: 'signature',
    needs: ['pop', 'body'],
    provides: ['signature'],
    reload: (trigger) => [source.reload(trigger)],
    close: () => source.close(),
    async run(ctx: RequestContext) {
      ctx.credentials.push('signature');
      const { keys } = source.current();
      const headers = parseSignatureHeaders(ctx.req.rawHeaders, maxEntries);
      // Well-formed but not yet verified: logged as the claimed nonce.
      ctx.webhookId = headers.id;

      const ageMs = now() - headers.timestampSeconds * 1000;
      if (ageMs > maxAge) throw new Rejection('REPLAY_TIMESTAMP_STALE', `timestamp is ${Math.round(ageMs / 1000)} s old, max_age ${maxAge / 1000} s`);
      if (-ageMs > maxAge) throw new Rejection('REPLAY_TIMESTAMP_FUTURE', `timestamp is ${Math.round(-ageMs / 1000)} s ahead, max_age ${maxAge / 1000} s`);

      const pop = need(ctx, 'pop', 'signature');
      const prefix = signedPrefix(headers.id, headers.timestamp);
      const body = need(ctx, 'body', 'signature');
      const own = keys.get(pop) ?? [];
      if (!(await findVerifyingKey(headers.entries, prefix, body, own, verifyOptions))) {
        throw new Rejection('SIGNATURE_MISMATCH', `none of ${headers.entries.length} entries verifies with the ${own.length} keys of ${pop}`);
      }
      // Signed by the POP from here on (the audit keeps the nonce whole; a replay of it is
      // refused below, but is still the POP's signed id).
      ctx.webhookTimestamp = headers.timestampSeconds;

      let result: NonceResult;
      try {
        result = await nonceStore.recordNonce(`${pop}:${headers.id}`, nonceTtl);
      } catch (err) {
        if (err instanceof StoreUnavailableError) throw new Rejection('REPLAY_STORE_UNAVAILABLE', err.message);
        throw err;
      }
      if (result === 'replayed') {
        if (deps.deferReusedNonce) ctx.nonceReused = true;
        else throw new Rejection('REPLAY_NONCE_REUSED', 'webhook-id already used by this POP within the window');
      }
      if (result === 'full') throw new Rejection('REPLAY_STORE_FULL', 'every nonce in the store is still live');
    },
  };
}
