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
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import type { Config } from '../config/schema.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { Rejection } from '../pipeline/reasons.ts';
import { need, type Stage } from '../pipeline/stage.ts';
import { type ContractField, foldKey, type JsonContainerSummary, JsonContractScanner, type JsonValueSummary } from './json-contract-scan.ts';
import { JSON_SCAN_SLICE_BYTES, nextTurn, scanJsonStructure, scanJsonStructureSync, type JsonBounds, type JsonScanOptions, type JsonStructureProblem } from './json-structure.ts';

export { foldKey, type JsonValueSummary } from './json-contract-scan.ts';

/**
 * The body's top-level fields that the contract reads, looked up case-insensitively: a string,
 * number, boolean or null as JSON.parse would hold it; an object or an array by kind and size.
 */
export interface ReplicationBody {
  readonly sourcePop: JsonValueSummary | undefined;
  readonly timestamp: JsonValueSummary | undefined;
  readonly nonce: JsonValueSummary | undefined;
  readonly entries: JsonValueSummary | undefined;
  readonly has: { readonly timestamp: boolean; readonly nonce: boolean; readonly entries: boolean; readonly sourcePop: boolean };
}

/** Whether a top-level value is an array (its `length` is the element count). */
export function isJsonArray(value: JsonValueSummary | undefined): value is JsonContainerSummary {
  return typeof value === 'object' && value !== null && value.kind === 'array';
}

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
 * Checks the body in one pass over its bytes (json-contract-scan.ts): UTF-8, strict JSON, the
 * structure bounds, repeated keys and lone surrogate escapes; throws a Rejection unless it is a
 * strict JSON object within the bounds. For bodies of one slice (and tests); the stage checks
 * larger ones in slices (parseReplicationBodyInSlices).
 */
export function parseReplicationBody(body: Buffer, bounds: JsonBounds): ReplicationBody {
  const scanner = new JsonContractScanner(body, bounds);
  scanner.scan(body.length);
  return verdictOf(scanner, body, () => scanJsonStructureSync(body, bounds).problem);
}

/** The work a sliced check did, for tests and the bench. */
export interface SlicedParseStats {
  /** Slices of the one pass. */
  slices: number;
  /** Slices of the structure count run again over a body found not UTF-8 or not JSON (0 otherwise). */
  recountSlices: number;
}

/**
 * parseReplicationBody for a large body: the pass runs in slices of `sliceBytes` with the event
 * loop given back in between (`pause`), so that other connections wait for one slice at most.
 */
export async function parseReplicationBodyInSlices(
  body: Buffer,
  bounds: JsonBounds,
  options: JsonScanOptions = {},
  stats: SlicedParseStats = { slices: 0, recountSlices: 0 },
): Promise<ReplicationBody> {
  const sliceBytes = options.sliceBytes ?? JSON_SCAN_SLICE_BYTES;
  const pause = options.pause ?? nextTurn;
  const scanner = new JsonContractScanner(body, bounds);
  for (;;) {
    scanner.scan(scanner.position + sliceBytes);
    stats.slices += 1;
    if (scanner.done) break;
    await pause();
  }
  let recount: JsonStructureProblem | undefined;
  if (scanner.malformed !== undefined) {
    await pause();
    const scanned = await scanJsonStructure(body, bounds, { sliceBytes, pause });
    stats.recountSlices = scanned.slices;
    recount = scanned.problem;
  }
  return verdictOf(scanner, body, () => recount);
}

/**
 * The reason, in today's order: a structure bound (counted over the bytes whether or not they
 * are JSON), BODY_NOT_UTF8, BODY_NOT_JSON, BODY_NOT_OBJECT, the first key problem. `recount`
 * runs the structure count of json-structure.ts, needed only when the pass found the bytes
 * malformed (until then its counts are exactly the pass's own).
 */
function verdictOf(scanner: JsonContractScanner, body: Buffer, recount: () => JsonStructureProblem | undefined): ReplicationBody {
  if (scanner.bound) throw new Rejection(scanner.bound.reason, scanner.bound.detail);
  if (scanner.malformed !== undefined) {
    const bound = recount();
    if (bound) throw new Rejection(bound.reason, bound.detail);
    if (scanner.malformed === 'utf8' || !isUtf8(body)) throw new Rejection('BODY_NOT_UTF8', 'the body is not valid UTF-8');
    throw new Rejection('BODY_NOT_JSON', 'the body is not JSON');
  }
  const kind = scanner.topKind;
  if (kind !== 'object') throw new Rejection('BODY_NOT_OBJECT', `the JSON body is ${kind === 'null' ? 'null' : kind === 'array' ? 'an array' : `a ${kind}`}`);
  if (scanner.keyProblem) throw new Rejection(scanner.keyProblem.reason, scanner.keyProblem.detail);
  const fields = scanner.fields;
  const has = (f: ContractField) => fields.has(f);
  return {
    sourcePop: fields.get('source_pop'),
    timestamp: fields.get('timestamp'),
    nonce: fields.get('nonce'),
    entries: fields.get('entries'),
    has: { sourcePop: has('source_pop'), timestamp: has('timestamp'), nonce: has('nonce'), entries: has('entries') },
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
  if (!isJsonArray(body.entries)) throw new Rejection('BODY_ENTRIES_INVALID', 'entries is not an array');
  return body.entries.length;
}

/**
 * Step 7's body check. Runs after the signature stage when there is one (then the request's
 * webhook-id and timestamp are verified facts on the context); without signatures the body's
 * own timestamp and nonce are not compared with anything, since unsigned headers prove nothing.
 * The structure bounds (`limits.max_json_depth`, `max_json_keys_per_object`, `max_json_values`)
 * are checked in the same pass over the bytes as the rest, nothing decoded but keys and the
 * fields read; a body larger than one slice (64 KiB) is checked in slices, the event loop given
 * back in between.
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
