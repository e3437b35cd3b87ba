/**
 * Builds the shared state stores from the config. Memory is the default (one guard process);
 * a Redis backend, for several guard replicas in front of one backup, plugs in here.
 */
import { REPLAY_DEFAULTS, type Config } from '../config/schema.ts';
import { MemoryNonceStore } from './memory.ts';
import type { NonceStore } from './store.ts';

/** The nonce store, bounded by `replay.max_nonces`; `now` is the clock the timestamp window uses. */
export function createNonceStore(config: Pick<Config, 'replay'>, now: () => number): NonceStore {
  const replay = config.replay ?? REPLAY_DEFAULTS;
  return new MemoryNonceStore({ maxNonces: replay.max_nonces, now });
}
