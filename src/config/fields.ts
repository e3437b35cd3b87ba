/**
 * The field types both roles' config schemas share (config/schema.ts for the guard,
 * config/primary-schema.ts for the signer): units parsed at load time, ports, files, pins, POP
 * ids, and the listener settings both roles' listeners take.
 */
import { z } from 'zod';
import { POP_ID_PATTERN, POP_ID_RULE } from './pop-id.ts';
import { parseDuration, parseSize } from './units.ts';

export const popIdSchema = z.string().regex(POP_ID_PATTERN, POP_ID_RULE);

/**
 * Which fields are durations (stored in ms), sizes (stored in bytes) and file paths, so that a
 * parsed config can be written back with units (`check-config --print`) and its files listed
 * (`doctor`). Registered on the field; zod's registry hands the entry down to the `.default()`,
 * `.optional()` and `.refine()` copies of it.
 */
export const FIELD_KINDS = z.registry<{ kind: 'duration' | 'size' | 'file' }>();

export const duration = (example: string) =>
  z.union([z.string(), z.number()]).register(FIELD_KINDS, { kind: 'duration' }).transform((value, ctx) => {
    const ms = parseDuration(value);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `not a duration; write a number with a unit (ms, s, m, h, d), e.g. ${example}` });
      return z.NEVER;
    }
    return ms;
  });

export const size = (example: string) =>
  z.union([z.string(), z.number()]).register(FIELD_KINDS, { kind: 'size' }).transform((value, ctx) => {
    const bytes = parseSize(value);
    if (bytes === undefined) {
      ctx.addIssue({ code: 'custom', message: `not a size; write bytes or a number with a unit (KiB, MiB, GiB), e.g. ${example}` });
      return z.NEVER;
    }
    return bytes;
  });

export const port = z.number().int().min(0).max(65535);
export const filePath = z.string().min(1).register(FIELD_KINDS, { kind: 'file' });

/** A SHA-256 certificate fingerprint, hex with or without colons; stored as lowercase hex. */
export const sha256Pin = z.string().transform((value, ctx) => {
  const hex = value.replace(/:/g, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    ctx.addIssue({ code: 'custom', message: 'not a SHA-256 fingerprint; write 64 hex digits (colons allowed), e.g. from `openssl x509 -noout -fingerprint -sha256`' });
    return z.NEVER;
  }
  return hex;
});

/** Where an admin listener (health, metrics; the guard's also ban administration) binds. */
export const adminListener = {
  /** Default 127.0.0.1 (loopback). Elsewhere, /healthz, /readyz and /metrics are reachable from the network (a warning says so); ban administration is not (see admin.token_file). */
  host: z.string().min(1).default('127.0.0.1'),
  /** Default 9090; 0 picks a free port (the `ready` log line names it). */
  port: port.default(9090),
};

/** Limits of an HTTP listener, the guard's and the signer's alike. */
export const listenerLimits = {
  /** Largest request body; a larger declared or streamed body is 413. */
  max_body_bytes: size('10MiB').default(10 * 1024 * 1024),
  /** Largest request head (request line and headers); larger is refused. */
  max_header_bytes: size('16KiB').default(16 * 1024),
  /** Most request headers; more is refused. */
  max_headers: z.number().int().min(8).max(1000).default(64),
  /** Time for a client to send the whole request head (slowloris): 408 after it. */
  header_timeout: duration('10s').default(10_000),
  /** Time for a client to send the whole request, body included: 408 after it. */
  request_timeout: duration('60s').default(60_000),
  /** How long an idle keep-alive connection stays open; long, so that POPs do not re-handshake. */
  keep_alive_timeout: duration('75s').default(75_000),
  /** Most simultaneous client connections; more are refused at accept. */
  max_connections: z.number().int().min(1).default(1024),
  /**
   * Most objects and arrays open at once in the JSON body (the body object is 1, `entries` 2,
   * an entry 3). Deeper: 400 BODY_JSON_TOO_DEEP, found over the raw bytes before anything is
   * parsed (the signer refuses the same body from its primary, same code). Default 32; 2 to 1000.
   */
  max_json_depth: z.number().int().min(2).max(1000).default(32),
  /**
   * Most keys in one JSON object of the body. More: 400 BODY_JSON_TOO_MANY_KEYS, before
   * parsing. Default 1000; at least 4 (the body's own source_pop, entries, timestamp, nonce).
   */
  max_json_keys_per_object: z.number().int().min(4).default(1000),
  /**
   * Most values in the JSON body, keys included (every object, array, string, number, true,
   * false, null and key counts one). More: 413 BODY_JSON_TOO_MANY_VALUES, before parsing:
   * split the batch. Bounds what parsing and the key scan cost. Default 200000 (about 12,000 entries of a dozen fields); at least 16.
   */
  max_json_values: z.number().int().min(16).default(200_000),
};
