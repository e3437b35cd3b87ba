/**
 * The body contract (step 7): the replication body is a strict JSON object that the backup
 * cannot read differently from the guard, it names the authenticated POP as its source, and
 * its `timestamp` and `nonce`, when present, are the signed headers' values.
 *
 * "Cannot read differently": the legacy backup's JSON parser is not ours. Duplicate keys are
 * last-wins in some parsers and first-wins in others; Go's encoding/json also matches object
 * keys to struct fields case-insensitively (with Unicode folding: "ſource_pop" is
 * "source_pop" to it), and turns a lone surrogate escape into U+FFFD. So a key that repeats
 * after unescaping and case folding is refused at any depth, a lone surrogate is refused
 * anywhere, and the top-level fields are looked up case-insensitively.
 */
import { createHash } from 'node:crypto';
import type { Config } from '../config/schema.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { Rejection, type Reason } from '../pipeline/reasons.ts';
import { need, type Stage } from '../pipeline/stage.ts';
import { JSON_SCAN_SLICE_BYTES, nextTurn, scanJsonStructure, scanJsonStructureSync, type JsonBounds, type JsonScanOptions } from './json-structure.ts';

/** The parsed body's top-level fields that the contract reads, looked up case-insensitively. */
export interface ReplicationBody {
  readonly sourcePop: unknown;
  readonly timestamp: unknown;
  readonly nonce: unknown;
  readonly entries: unknown;
  readonly has: { readonly timestamp: boolean; readonly nonce: boolean; readonly entries: boolean; readonly sourcePop: boolean };
}

// fatal: invalid UTF-8 throws instead of becoming U+FFFD; ignoreBOM: a BOM stays in the text,
// where JSON.parse refuses it (RFC 8259 section 8.1: senders MUST NOT add one).
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** Keys that are their own case fold (foldKey's fast path). */
const LOWER_ASCII_KEY = /^[a-z0-9_.-]*$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Checks the content type: `application/json`, optionally with `charset=utf-8`, nothing else. */
export function checkContentType(value: string | undefined): void {
  if (value === undefined) throw new Rejection('BODY_CONTENT_TYPE_INVALID', 'no content-type');
  const [type, ...params] = value.split(';').map((p) => p.trim().toLowerCase());
  if (type !== 'application/json') throw new Rejection('BODY_CONTENT_TYPE_INVALID', 'content-type is not application/json');
  for (const param of params) {
    if (param !== 'charset=utf-8' && param !== 'charset="utf-8"') {
      throw new Rejection('BODY_CONTENT_TYPE_INVALID', 'content-type has a parameter other than charset=utf-8');
    }
  }
}

/** The structure bounds of the config (`limits.max_json_*`). */
export function jsonBounds(limits: Pick<Config['limits'], 'max_json_depth' | 'max_json_keys_per_object' | 'max_json_values'>): JsonBounds {
  return { maxDepth: limits.max_json_depth, maxKeysPerObject: limits.max_json_keys_per_object, maxValues: limits.max_json_values };
}

/**
 * Checks the structure bounds, decodes and parses the body, all at once; throws a Rejection
 * unless it is a strict JSON object within the bounds. For bodies of one slice (and tests);
 * the stage scans larger ones in slices (parseReplicationBodyInSlices).
 */
export function parseReplicationBody(body: Buffer, bounds: JsonBounds): ReplicationBody {
  const { problem } = scanJsonStructureSync(body, bounds);
  if (problem) throw new Rejection(problem.reason, problem.detail);
  const { text, value } = decodeAndParse(body);
  const keyProblem = findKeyProblem(text);
  if (keyProblem) throw new Rejection(keyProblem.reason, keyProblem.detail);
  return topLevelFields(value);
}

/** The work a sliced parse did, for tests and the bench. */
export interface SlicedParseStats {
  /** Slices of the structure scan (bytes). */
  structureSlices: number;
  /** Slices of the key scan (characters), 0 when the structure scan refused the body. */
  keySlices: number;
}

/**
 * parseReplicationBody for a large body: the structure scan and the key scan run in slices of
 * `sliceBytes` with the event loop given back in between (`pause`), so that other connections
 * wait for one slice at most; in between, the decoding and JSON.parse run at once (no
 * incremental parser is at hand), their cost bounded by the size limit and the structure bounds.
 */
export async function parseReplicationBodyInSlices(
  body: Buffer,
  bounds: JsonBounds,
  options: JsonScanOptions = {},
  stats: SlicedParseStats = { structureSlices: 0, keySlices: 0 },
): Promise<ReplicationBody> {
  const sliceBytes = options.sliceBytes ?? JSON_SCAN_SLICE_BYTES;
  const pause = options.pause ?? nextTurn;
  const scanned = await scanJsonStructure(body, bounds, { sliceBytes, pause });
  stats.structureSlices = scanned.slices;
  if (scanned.problem) throw new Rejection(scanned.problem.reason, scanned.problem.detail);
  await pause();
  const { text, value } = decodeAndParse(body);
  const keys = new KeyScanner(text);
  for (;;) {
    await pause();
    const problem = keys.scan(keys.position + sliceBytes);
    stats.keySlices += 1;
    if (problem) throw new Rejection(problem.reason, problem.detail);
    if (keys.done) break;
  }
  return topLevelFields(value);
}

function decodeAndParse(body: Buffer): { text: string; value: object } {
  let text: string;
  try {
    text = UTF8.decode(body);
  } catch {
    throw new Rejection('BODY_NOT_UTF8', 'the body is not valid UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Rejection('BODY_NOT_JSON', 'the body is not JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Rejection('BODY_NOT_OBJECT', `the JSON body is ${value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`}`);
  }
  return { text, value };
}

function topLevelFields(value: object): ReplicationBody {
  // Top-level lookups by folded name: after the key scan, at most one key folds to each.
  const folded = new Map<string, unknown>();
  for (const [key, v] of Object.entries(value)) folded.set(foldKey(key), v);
  return {
    sourcePop: folded.get('source_pop'),
    timestamp: folded.get('timestamp'),
    nonce: folded.get('nonce'),
    entries: folded.get('entries'),
    has: { sourcePop: folded.has('source_pop'), timestamp: folded.has('timestamp'), nonce: folded.has('nonce'), entries: folded.has('entries') },
  };
}

/** What the body says, checked against the request's verified facts. */
export interface BodyFacts {
  /** The authenticated POP. */
  readonly pop: string;
  /** webhook-timestamp in seconds, when the request was signed. */
  readonly timestampSeconds: number | undefined;
  /** webhook-id, when the request was signed. */
  readonly webhookId: string | undefined;
}

/** Checks the fields against the facts; returns the number of entries (undefined when absent). */
export function checkReplicationBody(body: ReplicationBody, facts: BodyFacts): number | undefined {
  if (typeof body.sourcePop !== 'string') {
    throw new Rejection('BODY_SOURCE_POP_MISSING', body.has.sourcePop ? 'source_pop is not a string' : 'no source_pop');
  }
  if (body.sourcePop !== facts.pop) {
    throw new Rejection('BODY_SOURCE_POP_MISMATCH', `source_pop ${JSON.stringify(body.sourcePop.slice(0, 64))} is not the authenticated POP ${facts.pop}`);
  }
  if (body.has.timestamp && facts.timestampSeconds !== undefined && body.timestamp !== facts.timestampSeconds) {
    throw new Rejection('BODY_TIMESTAMP_MISMATCH', 'the body timestamp is not the integer in webhook-timestamp');
  }
  if (body.has.nonce && facts.webhookId !== undefined && body.nonce !== facts.webhookId) {
    throw new Rejection('BODY_NONCE_MISMATCH', 'the body nonce is not webhook-id');
  }
  if (!body.has.entries) return undefined;
  if (!Array.isArray(body.entries)) throw new Rejection('BODY_ENTRIES_INVALID', 'entries is not an array');
  return body.entries.length;
}

/**
 * Step 7's body check. Runs after the signature stage when there is one (then the request's
 * webhook-id and timestamp are verified facts on the context); without signatures the body's
 * own timestamp and nonce are not compared with anything, since unsigned headers prove nothing.
 * The structure bounds (`limits.max_json_depth`, `max_json_keys_per_object`, `max_json_values`)
 * are checked over the bytes before anything is decoded or parsed; a body larger than one slice
 * (64 KiB) is checked in slices, the event loop given back in between.
 */
export function createBodyContractStage(
  config: {
    readonly limits: Pick<Config['limits'], 'max_json_depth' | 'max_json_keys_per_object' | 'max_json_values'>;
    readonly auth: Pick<Config['auth'], 'methods'>;
    readonly upstream?: Pick<Config['upstream'], 'deduplicate'>;
  },
  options: JsonScanOptions = {},
): Stage {
  const bounds = jsonBounds(config.limits);
  const dedup = config.upstream?.deduplicate !== undefined;
  const met = (ctx: RequestContext, body: Buffer, parsed: ReplicationBody) => {
    ctx.contractMet = true;
    // A signed retry carries the same webhook-id with a fresh timestamp: the batch is the body
    // without it (the contract just checked that it is webhook-timestamp).
    if (dedup) ctx.batchDigest = batchDigest(body, ctx.webhookTimestamp !== undefined && parsed.has.timestamp);
  };
  const sliceBytes = options.sliceBytes ?? JSON_SCAN_SLICE_BYTES;
  return {
    name: 'body-contract',
    // With signatures on, the body's timestamp and nonce are compared with the verified headers.
    needs: config.auth.methods.includes('signature') ? ['pop', 'body', 'signature'] : ['pop', 'body'],
    provides: ['contract'],
    run(ctx: RequestContext) {
      const pop = need(ctx, 'pop', 'body-contract');
      checkContentType(ctx.req.headers['content-type']);
      const body = need(ctx, 'body', 'body-contract');
      const facts = {
        pop,
        timestampSeconds: ctx.webhookTimestamp,
        webhookId: ctx.webhookTimestamp !== undefined ? ctx.webhookId : undefined,
      };
      if (body.length <= sliceBytes) {
        const parsed = parseReplicationBody(body, bounds);
        ctx.entries = checkReplicationBody(parsed, facts);
        met(ctx, body, parsed);
        return;
      }
      return parseReplicationBodyInSlices(body, bounds, { sliceBytes, pause: options.pause }).then((parsed) => {
        ctx.entries = checkReplicationBody(parsed, facts);
        met(ctx, body, parsed);
      });
    },
  };
}

/**
 * Go's strings.EqualFold-style comparison key. Upper then lower case maps the Unicode letters
 * that fold onto ASCII (U+017F long s to "s", U+212A Kelvin sign to "k") onto their ASCII form.
 * It also folds a few pairs EqualFold does not ("ß"/"ss"): that only refuses more.
 */
export function foldKey(key: string): string {
  // Plain lower-case ASCII (nearly every key) is its own fold.
  return LOWER_ASCII_KEY.test(key) ? key : key.toUpperCase().toLowerCase();
}

/**
 * Finds a repeated key (after unescaping and folding) in any object, or a lone surrogate in
 * any string. Hand-written because JSON.parse keeps only the last of repeated keys and offers
 * no hook that sees the others (a reviver runs after they are merged), and no JSON library in
 * the project's dependencies reports them. `text` has already been accepted by JSON.parse, so
 * this scanner only tracks structure: it needs no error handling, and it is iterative (an
 * explicit stack), so nesting depth cannot overflow the call stack.
 */
export function findKeyProblem(text: string): KeyProblem | undefined {
  const scanner = new KeyScanner(text);
  return scanner.scan(text.length);
}

export interface KeyProblem {
  readonly reason: Reason;
  readonly detail: string;
}

/**
 * findKeyProblem as a pass that can stop and go on: `scan(until)` reads on to the character
 * index `until` (or a little past it, to the end of the string it is in) and returns the
 * problem found so far. The body contract stage scans a large body in slices this way, giving
 * the event loop back in between. Linear: every character is passed once, by indexOf or by
 * the loop; an object's key set is made at its first key (an empty object costs none).
 */
export class KeyScanner {
  /** Where the scan has got to (a character index). */
  position = 0;
  private readonly text: string;
  // One entry per open container: the folded keys seen so far for an object (0 before its
  // first key), null for an array.
  private readonly stack: Array<Set<string> | 0 | null> = [];
  private expectKey = false;
  private depth = 0;
  // Where the next backslash is (text.length when there is none left): looked up again only
  // once the scan has passed it, so finding escapes stays linear in the body's length.
  private nextEscape = -1;
  private problem: KeyProblem | undefined;

  constructor(text: string) {
    this.text = text;
  }

  get done(): boolean {
    return this.problem !== undefined || this.position >= this.text.length;
  }

  scan(until: number): KeyProblem | undefined {
    if (this.problem) return this.problem;
    const { text, stack } = this;
    const n = Math.min(until, text.length);
    let { expectKey, depth, nextEscape, position: i } = this;
    let problem: KeyProblem | undefined;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x22 /* " */) {
        const end = stringEnd(text, i);
        if (nextEscape < i) {
          nextEscape = text.indexOf('\\', i + 1);
          if (nextEscape === -1) nextEscape = text.length;
        }
        const hasEscape = nextEscape < end;
        // Only an escape can spell a lone surrogate (JSON.parse accepted the text, and a JS string
        // decoded from valid UTF-8 holds none): unescaped strings cost no copy.
        let value: string | undefined;
        if (hasEscape) {
          value = JSON.parse(text.slice(i, end + 1)) as string;
          if (LONE_SURROGATE.test(value)) {
            problem = { reason: 'BODY_NOT_UTF8', detail: 'a JSON string escapes a lone surrogate' };
            break;
          }
        }
        const top = stack[depth - 1];
        if (expectKey && top !== null && top !== undefined) {
          value ??= text.slice(i + 1, end);
          const key = foldKey(value);
          let keys = top;
          if (keys === 0) {
            keys = new Set();
            stack[depth - 1] = keys;
          }
          if (keys.has(key)) {
            problem = { reason: 'BODY_DUPLICATE_KEY', detail: `a key repeats at depth ${depth}${key === value ? '' : ' (after case folding)'}` };
            break;
          }
          keys.add(key);
          expectKey = false;
        }
        i = end + 1;
        continue;
      }
      if (c === 0x7b /* { */) {
        stack[depth++] = 0;
        expectKey = true;
      } else if (c === 0x5b /* [ */) {
        stack[depth++] = null;
        expectKey = false;
      } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
        stack[--depth] = null;
        expectKey = false;
      } else if (c === 0x2c /* , */) {
        expectKey = stack[depth - 1] != null;
      }
      i += 1;
    }
    Object.assign(this, { expectKey, depth, nextEscape, position: i, problem });
    return problem;
  }
}

/** Index of the quote closing the string that opens at `start` (skips escaped quotes). */
export function stringEnd(text: string, start: number): number {
  let j = start;
  for (;;) {
    j = text.indexOf('"', j + 1);
    let backslashes = 0;
    while (text.charCodeAt(j - 1 - backslashes) === 0x5c) backslashes += 1;
    if (backslashes % 2 === 0) return j;
  }
}

/**
 * The SHA-256 (hex) that names a batch for upstream.deduplicate: of the whole body, or, with
 * `withoutTimestamp` (a signed body, whose `timestamp` is the attempt's webhook-timestamp), of
 * the body with the value of its top-level `timestamp` member cut out. `body` met the contract.
 */
export function batchDigest(body: Buffer, withoutTimestamp: boolean): string {
  const hash = createHash('sha256');
  if (!withoutTimestamp) return hash.update(body).digest('hex');
  const text = body.toString('utf8');
  const member = topLevelMembers(text).find((m) => m.key === 'timestamp');
  if (!member) return hash.update(body).digest('hex');
  return hash.update(text.slice(0, member.start)).update('\u0000').update(text.slice(member.end)).digest('hex');
}

/** A top-level member of a body: its folded name and the span of its value. */
export interface Member {
  /** The member name, folded as the guard looks it up. */
  readonly key: string;
  /** The value's span in the text, [start, end). */
  readonly start: number;
  readonly end: number;
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);

/**
 * The members of the top-level object of `text` (valid JSON, an object, no repeated folded
 * key): their folded names and value spans. Only structure is tracked; strings are skipped
 * whole, so braces and commas inside them do not count.
 */
export function topLevelMembers(text: string): Member[] {
  const members: Member[] = [];
  let depth = 0;
  let expectKey = false;
  let key: string | undefined;
  let start = -1;
  const close = (end: number) => {
    if (key === undefined) return;
    let e = end;
    while (e > start && WS.has(text.charCodeAt(e - 1))) e -= 1;
    members.push({ key, start, end: e });
    key = undefined;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const end = stringEnd(text, i);
      if (depth === 1 && expectKey) {
        key = foldKey(JSON.parse(text.slice(i, end + 1)) as string);
        expectKey = false;
      }
      i = end;
    } else if (c === 0x3a /* : */ && depth === 1) {
      start = i + 1;
      while (WS.has(text.charCodeAt(start))) start += 1;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      depth += 1;
      if (depth === 1) expectKey = true;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      if (depth === 1) close(i);
      depth -= 1;
    } else if (c === 0x2c /* , */ && depth === 1) {
      close(i);
      expectKey = true;
    }
  }
  return members;
}
