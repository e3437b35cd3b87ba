/**
 * Bounds on the JSON body's structure, checked over the raw bytes before anything decodes or
 * parses them (docs/security.md, hardening: CPU amplification by JSON structure): nesting depth (`limits.max_json_depth`), keys in one
 * object (`limits.max_json_keys_per_object`) and values in the whole body
 * (`limits.max_json_values`). Within the body size limit, a body of millions of nested arrays,
 * empty objects or keys costs JSON.parse and the key scan seconds of CPU; past these bounds it
 * costs a pass over the bytes up to the first one beyond a bound, and nothing else.
 *
 * Hand-written: JSON.parse has no bound on depth or size of what it builds, and no well-kept
 * JavaScript JSON library checks depth and member counts before building the tree: fastify's
 * secure-json-parse guards only `__proto__` / `constructor` keys; the streaming tokenizers
 * (@streamparser/json, stream-json) emit an object per token, the very allocation per token
 * this pass exists to avoid, and bound nothing; the few small packages that do bound depth and
 * keys are single-author, unmaintained, and cannot stop and resume between slices. (Parsers of
 * other languages bound depth by default: Boost.JSON's max_depth is 32, as ours.) The
 * pass is a small state machine over bytes, one step per byte, allocating nothing per token;
 * its state is a few numbers and two arrays sized by `max_json_depth`, so it can stop anywhere
 * and go on with the next slice of the body, which is how a large body is scanned without
 * holding the event loop (scanJsonStructure).
 *
 * It validates nothing: JSON.parse still decides what is JSON. For every text JSON.parse accepts
 * the counts are exact (brackets and commas inside strings are skipped, escapes included);
 * for other bytes they are whatever they are, and the body is refused either way.
 */
import { setImmediate } from 'node:timers';
import type { Reason } from '../pipeline/reasons.ts';

export interface JsonBounds {
  /** Most containers (objects and arrays) open at once; the body object itself is depth 1. */
  readonly maxDepth: number;
  /** Most keys in one object. */
  readonly maxKeysPerObject: number;
  /** Most values in the body: objects, arrays, strings, numbers, true, false, null, and keys (each counts as one). */
  readonly maxValues: number;
}

export interface JsonStructureProblem {
  readonly reason: Extract<Reason, 'BODY_JSON_TOO_DEEP' | 'BODY_JSON_TOO_MANY_KEYS' | 'BODY_JSON_TOO_MANY_VALUES'>;
  readonly detail: string;
}

/** Bytes per slice of a large body: about 0.1 ms of work on a current core. */
export const JSON_SCAN_SLICE_BYTES = 64 * 1024;

/** Ordinary string bytes in a row before the scan jumps with indexOf. */
const JUMP_AFTER_BYTES = 16;

const OBJECT = 1;
const ARRAY = 2;

// Bytes that end a number or literal (scalar) outside strings: structure, whitespace, quote.
const SEPARATOR = new Uint8Array(256);
for (const c of '{}[],:" \t\n\r') SEPARATOR[c.charCodeAt(0)] = 1;

/**
 * The resumable pass. `scan()` takes the body's bytes in order, in pieces of any size; the
 * first problem ends the pass (later calls return it again and read nothing).
 */
export class JsonStructureScanner {
  /** Bytes examined so far (the work done: one step per byte, never more). */
  bytesScanned = 0;
  /** Values (keys included) counted so far. */
  values = 0;
  private readonly bounds: JsonBounds;
  // Per open container, indexed by depth (1 = the outermost): its kind, and for an object the
  // keys seen so far. Sized once by the depth bound: nothing grows while scanning.
  private readonly kind: Uint8Array;
  private readonly keys: Uint32Array;
  private depth = 0;
  private inString = false;
  private escaped = false;
  private inScalar = false;
  private expectKey = false;
  private problem: JsonStructureProblem | undefined;

  constructor(bounds: JsonBounds) {
    this.bounds = bounds;
    this.kind = new Uint8Array(bounds.maxDepth + 1);
    this.keys = new Uint32Array(bounds.maxDepth + 1);
  }

  /** Scans `bytes[start, end)`; returns the first problem, if any, so far. */
  scan(bytes: Uint8Array, start = 0, end = bytes.length): JsonStructureProblem | undefined {
    if (this.problem) return this.problem;
    const { maxDepth, maxKeysPerObject, maxValues } = this.bounds;
    const { kind, keys } = this;
    let { depth, inString, escaped, inScalar, expectKey, values } = this;
    let i = start;
    let problem: JsonStructureProblem | undefined;
    // Inside a string only a quote or a backslash matters: jump to the next one with indexOf
    // (memchr on a Buffer), which is most of a batch's bytes. Each is searched for once and
    // reused until the scan has passed it, so no byte is searched twice: linear in the bytes,
    // however many escapes a string holds.
    let nextBackslash = -1;
    let nextQuote = -1;
    let run = 0;
    for (; i < end; i++) {
      if (inString) {
        if (escaped) {
          escaped = false;
          continue;
        }
        const c = bytes[i]!;
        if (c === 0x5c /* \ */) {
          escaped = true;
          run = 0;
          continue;
        }
        if (c === 0x22 /* " */) {
          inString = false;
          run = 0;
          continue;
        }
        // An ordinary byte. After a few in a row, jump to just before the next quote or
        // backslash (a string dense with escapes stays on the byte loop, cheaper there).
        if (++run < JUMP_AFTER_BYTES) continue;
        run = 0;
        if (nextBackslash < i) {
          const found = bytes.indexOf(0x5c /* \ */, i);
          nextBackslash = found === -1 ? Number.MAX_SAFE_INTEGER : found;
        }
        if (nextQuote < i) {
          const found = bytes.indexOf(0x22 /* " */, i);
          nextQuote = found === -1 ? Number.MAX_SAFE_INTEGER : found;
        }
        i = Math.min(nextQuote, nextBackslash, end) - 1; // the loop's i++ lands on it (or ends the piece)
        continue;
      }
      const c = bytes[i]!;
      if (SEPARATOR[c] === 0) {
        // A number or a literal: counted once, at its first byte.
        if (!inScalar) {
          inScalar = true;
          if (++values > maxValues) {
            problem = tooManyValues(maxValues);
            break;
          }
        }
        continue;
      }
      inScalar = false;
      if (c === 0x22 /* " */) {
        inString = true;
        if (expectKey) {
          expectKey = false;
          if (++keys[depth]! > maxKeysPerObject) {
            problem = { reason: 'BODY_JSON_TOO_MANY_KEYS', detail: `an object at depth ${depth} has more than ${maxKeysPerObject} keys (limits.max_json_keys_per_object)` };
            break;
          }
        }
        // A key is counted with the values: it costs the parser and the key scan as much as one.
        if (++values > maxValues) {
          problem = tooManyValues(maxValues);
          break;
        }
      } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
        if (++values > maxValues) {
          problem = tooManyValues(maxValues);
          break;
        }
        if (depth === maxDepth) {
          problem = { reason: 'BODY_JSON_TOO_DEEP', detail: `the JSON nests deeper than ${maxDepth} objects and arrays (limits.max_json_depth)` };
          break;
        }
        depth += 1;
        const isObject = c === 0x7b;
        kind[depth] = isObject ? OBJECT : ARRAY;
        keys[depth] = 0;
        expectKey = isObject;
      } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
        // An unbalanced closer is not JSON: JSON.parse refuses it; never go below zero.
        if (depth > 0) depth -= 1;
        expectKey = false;
      } else if (c === 0x2c /* , */) {
        expectKey = kind[depth] === OBJECT && depth > 0;
      }
    }
    // A refusal counts the byte that crossed the bound.
    this.bytesScanned += (problem ? i + 1 : i) - start;
    Object.assign(this, { depth, inString, escaped, inScalar, expectKey, values });
    this.problem = problem;
    return problem;
  }
}

function tooManyValues(max: number): JsonStructureProblem {
  return { reason: 'BODY_JSON_TOO_MANY_VALUES', detail: `the JSON has more than ${max} values and keys (limits.max_json_values)` };
}

export interface JsonScanResult {
  readonly problem: JsonStructureProblem | undefined;
  /** Bytes examined: the whole body when it passed, up to the refused byte otherwise. */
  readonly bytesScanned: number;
  /** Slices the scan took (ceil(bytes / slice) for a body that passed). */
  readonly slices: number;
}

export interface JsonScanOptions {
  /** Bytes per slice; default JSON_SCAN_SLICE_BYTES. */
  readonly sliceBytes?: number;
  /** Lets other connections run between two slices; default: the next turn of the event loop (setImmediate). */
  readonly pause?: () => Promise<void>;
}

/** Scans a body that fits in one slice, synchronously. */
export function scanJsonStructureSync(body: Uint8Array, bounds: JsonBounds): JsonScanResult {
  const scanner = new JsonStructureScanner(bounds);
  const problem = scanner.scan(body);
  return { problem, bytesScanned: scanner.bytesScanned, slices: 1 };
}

/**
 * Scans the body in slices of `sliceBytes`, giving the event loop back between two slices, so
 * that a large body's scan holds other connections for one slice at most.
 */
export async function scanJsonStructure(body: Uint8Array, bounds: JsonBounds, options: JsonScanOptions = {}): Promise<JsonScanResult> {
  const sliceBytes = options.sliceBytes ?? JSON_SCAN_SLICE_BYTES;
  const pause = options.pause ?? nextTurn;
  const scanner = new JsonStructureScanner(bounds);
  let slices = 0;
  for (let start = 0; ; start += sliceBytes) {
    const problem = scanner.scan(body, start, Math.min(body.length, start + sliceBytes));
    slices += 1;
    if (problem || start + sliceBytes >= body.length) return { problem, bytesScanned: scanner.bytesScanned, slices };
    await pause();
  }
}

/** Resolves on the event loop's next check phase, after pending I/O callbacks have run. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
