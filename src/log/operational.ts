/**
 * Operational log: start-up, reloads, internal errors with full detail, for the operator.
 * Separate from the audit trail (event.dataset "replguard.operational" vs "replguard.audit"), on stderr.
 *
 * Messages and fields are the program's own text. The one way client text can get in is an
 * unexpected error (`{ err }`): a library may quote what it choked on in its message, so the
 * error's strings are cut before anything credential-shaped, line by line (core/redact.ts),
 * which keeps the stack's frames.
 */
import pino, { type DestinationStream, type Logger } from 'pino';
import { redactClientText } from '../core/redact.ts';
import { createJsonLogger } from './json-logger.ts';

export type OperationalLog = Logger;

/** Every string of a serialized error (its message, stack, cause...), each line cut at its first credential-shaped word. */
function redactError(value: unknown): unknown {
  return redactStrings(pino.stdSerializers.err(value as Error) as unknown, 0);
}

/** Depth-bounded: an error's own fields and its causes, not an arbitrary object graph. */
function redactStrings(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return redactLines(value);
  if (!value || typeof value !== 'object') return value;
  if (depth > 4) return '[Object]'; // fails closed: deeper strings are not looked at, so not written
  if (Array.isArray(value)) return value.map((v) => redactStrings(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) out[key] = redactStrings(v, depth + 1);
  return out;
}

function redactLines(text: string): string {
  return text.split('\n').map((line) => redactClientText(line).text).join('\n');
}

export function createOperationalLog(level: string = 'info', destination?: DestinationStream): OperationalLog {
  return createJsonLogger({ type: 'operational', level, serializers: { err: redactError } }, destination ?? pino.destination({ dest: 2, sync: true }));
}
