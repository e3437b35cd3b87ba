/**
 * Where audit events go: NDJSON through pino, to stdout by default (for a node-level log
 * shipper). Alerts are written at level warn and carry event.kind "alert".
 */
import pino, { type DestinationStream, type Logger } from 'pino';
import type { AuditEvent } from './event.ts';
import type { SignerAuditEvent } from './signer-event.ts';

export interface AuditLog {
  write(event: AuditEvent | SignerAuditEvent): void;
  /** Writes out whatever is buffered; called before exit so no finished request's event is lost. */
  flush(): void;
}

export function createAuditLog(destination?: DestinationStream): AuditLog {
  const dest = destination ?? pino.destination({ dest: 1, sync: false, minLength: 0 });
  const logger: Logger = pino(
    {
      base: undefined,
      messageKey: 'message',
      timestamp: () => `,"@timestamp":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ log: { level: label, type: 'audit' } }) },
    },
    dest,
  );
  return {
    write(event) {
      if (event.event.kind === 'alert') logger.warn(event);
      else logger.info(event);
    },
    flush() {
      const d = dest as { flushSync?: () => void };
      try {
        d.flushSync?.();
      } catch {
        // Not ready yet (nothing written) or already closed: nothing to flush.
      }
    },
  };
}
