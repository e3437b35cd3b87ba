/** The per-process shared state (nonces, rate counters, bans) a live guard needs, in memory. */
import { createAuditLog } from '../../src/audit/audit-log.ts';
import type { Config } from '../../src/config/schema.ts';
import { Bans } from '../../src/limits/bans.ts';
import type { OperationalLog } from '../../src/log/operational.ts';
import type { SharedPipelineDeps } from '../../src/guard/reload.ts';
import { createSharedState } from '../../src/store/create.ts';

export function memorySharedState(config: Readonly<Config>, log: OperationalLog): SharedPipelineDeps {
  const state = createSharedState(config, { now: Date.now, log });
  const audit = createAuditLog(undefined, { stream: { write: () => undefined } });
  const bans = new Bans(config, state, { now: Date.now, audit, log, popOfCertificate: () => undefined });
  return { nonceStore: state.nonces, deliveries: state.deliveries, bans, limiters: state.limiters };
}
