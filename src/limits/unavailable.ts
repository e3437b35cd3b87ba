/** The one refusal for "the shared store did not answer": 503 with Retry-After, never let through. */
import { Rejection } from '../pipeline/reasons.ts';

/** Seconds a client is told to wait when the store cannot be reached. */
export const STORE_RETRY_AFTER_S = 5;

export function storeUnavailable(what: string, err: unknown): Rejection {
  return new Rejection('LIMIT_STORE_UNAVAILABLE', `${what}: ${(err as Error)?.message ?? String(err)}`, { retryAfter: STORE_RETRY_AFTER_S });
}
