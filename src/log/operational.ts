/**
 * Operational log: start-up, reloads, internal errors with full detail, for the operator.
 * Separate from the audit trail (log.type "operational" vs "audit"), on stderr.
 */
import pino, { type DestinationStream, type Logger } from 'pino';

export type OperationalLog = Logger;

export function createOperationalLog(level: string = 'info', destination?: DestinationStream): OperationalLog {
  return pino(
    {
      level,
      base: undefined,
      messageKey: 'message',
      timestamp: () => `,"@timestamp":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ log: { level: label, type: 'operational' } }) },
    },
    destination ?? pino.destination({ dest: 2, sync: true }),
  );
}
