/**
 * The one pino factory: both logs (operational on stderr, audit to stdout or a file) write the
 * same envelope, one JSON object per line: `@timestamp` (ISO 8601), `message`, and
 * `log.level`, and `event.dataset` naming which log a line belongs to (`replguard.audit`, which
 * every audit event carries itself, or `replguard.operational`, added here). `log.type` is not
 * an ECS field, so it is not used. Options are fixed here, at start-up.
 */
import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino';

const OPERATIONAL_DATASET = 'replguard.operational';

export interface JsonLoggerOptions {
  /** Which log: `operational` (its lines get `event.dataset: replguard.operational`) or `audit`. */
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
      formatters: { level: (label) => ({ log: { level: label } }) },
      ...(options.type === 'operational'
        ? {
          mixin: () => ({ event: { dataset: OPERATIONAL_DATASET } }),
          // A line that has its own `event` object keeps it, with the dataset in it (no second key).
          mixinMergeStrategy: (line: object, mixin: object) => {
            const own = (line as { event?: unknown }).event;
            return typeof own === 'object' && own !== null
              ? Object.assign(line, { event: { ...own, dataset: OPERATIONAL_DATASET } })
              : Object.assign(mixin, line);
          },
        }
        : {}),
      ...(options.serializers ? { serializers: options.serializers } : {}),
    },
    destination,
  );
}
