/**
 * The one pino factory: both logs (operational on stderr, audit to stdout or a file) write the
 * same envelope, one JSON object per line: `@timestamp` (ISO 8601), `message`, and
 * `log: {level, type}` naming which log a line belongs to. Options are fixed here, at start-up.
 */
import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino';

export interface JsonLoggerOptions {
  /** Which log: `operational` or `audit` (`log.type` of every line). */
  readonly type: 'operational' | 'audit';
  /** Lowest level written; default info. */
  readonly level?: string;
  /** pino serializers, e.g. the operational log's redaction of errors. */
  readonly serializers?: LoggerOptions['serializers'];
}

export function createJsonLogger(options: JsonLoggerOptions, destination: DestinationStream): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: undefined,
      messageKey: 'message',
      timestamp: () => `,"@timestamp":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ log: { level: label, type: options.type } }) },
      ...(options.serializers ? { serializers: options.serializers } : {}),
    },
    destination,
  );
}
