/**
 * The body contract in one pass over the bytes (issue 22, part 1): UTF-8, strict JSON
 * (RFC 8259, as JSON.parse reads it), the structure bounds (`limits.max_json_*`, as
 * json-structure.ts counts them), repeated keys after unescaping and case folding, lone
 * surrogate escapes, and the top-level `source_pop`, `timestamp`, `nonce` and `entries`, without
 * decoding the body to a string and without building its tree.
 *
 * Where the time goes, and how little of it there is:
 * - UTF-8 is validated natively (`isUtf8` of node:buffer, on Node and Deno), slice by slice.
 * - A string's contents are skipped with native search (indexOf of the quote and of the
 *   backslash, each looked up once and reused until passed, so linear however many escapes),
 *   after a few bytes on the byte loop (cheaper for the short strings of a batch); the bytes
 *   skipped are checked for raw control characters four at a time.
 * - Keys are compared, not decoded: an unescaped ASCII key is compared as bytes (letters
 *   folded) with its object's others; an object's keys are decoded and folded only once one of
 *   them needs it (an escape, a byte past ASCII) or it has more than 16, then compared as
 *   strings (in a Set past 16).
 * - Strings, integers and literals that end within the slice end in the structure loop; the
 *   resumable token states are for what runs on past a slice's end.
 * - The top-level values the contract reads are decoded alone (a string, a number, a literal;
 *   of an object or an array only its kind and member count).
 *
 * The pass validates; it does not decide the reason of a refusal alone. Today's order of
 * reasons is: a structure bound (counted over the bytes even when they are not JSON), then
 * BODY_NOT_UTF8, BODY_NOT_JSON, BODY_NOT_OBJECT, then the first key problem. A bound or a key
 * problem found here is final for a body that is UTF-8 and JSON up to that point; when the bytes
 * turn out not to be UTF-8 or not JSON (`malformed`), body-contract.ts runs the structure
 * counter of json-structure.ts over the whole body to find whether a bound came first: that
 * second pass happens only for a body refused anyway.
 *
 * Resumable: `scan(until)` reads on to `until` (past it by at most the rest of an escape, 11
 * bytes) and can be called again with a later `until`, so the stage gives the event loop back
 * between two slices of a large body.
 */
import { Buffer, isUtf8 } from 'node:buffer';
import type { Reason } from '../pipeline/reasons.ts';
import type { JsonBounds, JsonStructureProblem } from './json-structure.ts';

/** A top-level value as the contract reads it: scalars decoded, containers by kind and size. */
export type JsonValueSummary = string | number | boolean | null | JsonContainerSummary;

export interface JsonContainerSummary {
  readonly kind: 'object' | 'array';
  /** Members of an object, elements of an array. */
  readonly length: number;
}

/** What JSON.parse's result would have been a `typeof` of (the body must be an object). */
export type JsonTopKind = 'object' | 'array' | 'string' | 'number' | 'boolean' | 'null';

export interface KeyProblem {
  readonly reason: Reason;
  readonly detail: string;
}

/** The top-level members the contract reads, looked up by folded name. */
export const CONTRACT_FIELDS = ['source_pop', 'timestamp', 'nonce', 'entries'] as const;
export type ContractField = (typeof CONTRACT_FIELDS)[number];

/** Keys that are their own case fold (foldKey's fast path). */
const LOWER_ASCII_KEY = /^[a-z0-9_.-]*$/;

/**
 * Go's strings.EqualFold-style comparison key. Upper then lower case maps the Unicode letters
 * that fold onto ASCII (U+017F long s to "s", U+212A Kelvin sign to "k") onto their ASCII form.
 * It also folds a few pairs EqualFold does not ("ß"/"ss"): that only refuses more.
 */
export function foldKey(key: string): string {
  // Plain lower-case ASCII (nearly every key) is its own fold.
  return LOWER_ASCII_KEY.test(key) ? key : key.toUpperCase().toLowerCase();
}

const OBJECT = 1;
const ARRAY = 2;

// What may come next, between tokens.
const M_VALUE = 0; // a value: at the start, after ':', after ',' in an array
const M_VALUE_OR_CLOSE = 1; // after '['
const M_KEY_OR_CLOSE = 2; // after '{'
const M_KEY = 3; // after ',' in an object
const M_COLON = 4; // after a key
const M_AFTER = 5; // after a value in a container: ',' or its closer
const M_END = 6; // after the top-level value: whitespace only

// A token in progress (kept across two calls of scan()).
const T_NONE = 0;
const T_STRING = 1;
const T_NUMBER = 2;
const T_LITERAL = 3;

// Number states (RFC 8259 section 6): -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
const N_MINUS = 0;
const N_ZERO = 1;
const N_INT = 2;
const N_DOT = 3;
const N_FRAC = 4;
const N_E = 5;
const N_E_SIGN = 6;
const N_EXP = 7;
const N_ACCEPTS = [false, true, true, false, true, false, false, true];

const LITERALS = [Buffer.from('true'), Buffer.from('false'), Buffer.from('null')];
const LITERAL_VALUES = [true, false, null];

// Bytes that stop the byte loop in a string: quote, backslash, control characters.
const STRING_STOP = new Uint8Array(256);
for (let c = 0; c < 0x20; c++) STRING_STOP[c] = 1;
STRING_STOP[0x22] = 1;
STRING_STOP[0x5c] = 1;

/** Ordinary string bytes in a row before the scan jumps with indexOf. */
const JUMP_AFTER_BYTES = 16;
/** Keys per object compared in a list; past this, in a Set. */
const KEY_LIST_MAX = 16;

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

/** The code unit of the 4 hex digits at `at`, or -1. */
function hex4(bytes: Uint8Array, at: number): number {
  if (at + 4 > bytes.length) return -1;
  const a = hexValue(bytes[at]!);
  const b = hexValue(bytes[at + 1]!);
  const c = hexValue(bytes[at + 2]!);
  const d = hexValue(bytes[at + 3]!);
  if ((a | b | c | d) < 0) return -1;
  return (a << 12) | (b << 8) | (c << 4) | d;
}

// "\"", "\\", "/", "b", "f", "n", "r", "t": the escapes other than \u.
const SIMPLE_ESCAPE = new Uint8Array(256);
for (const c of '"\\/bfnrt') SIMPLE_ESCAPE[c.charCodeAt(0)] = 1;

export class JsonContractScanner {
  /** Where the pass has got to (bytes). */
  position = 0;
  /** Not UTF-8 or not JSON: the body is refused; which reason is body-contract.ts's to find. */
  malformed: 'utf8' | 'json' | undefined;
  /** A structure bound crossed at a point where the bytes so far were UTF-8 and JSON. */
  bound: JsonStructureProblem | undefined;
  /** The first repeated key or lone surrogate escape, in text order. */
  keyProblem: KeyProblem | undefined;
  /** The kind of the top-level value (set at its first byte). */
  topKind: JsonTopKind | undefined;
  /** The top-level members the contract reads (an object body), by folded name. */
  readonly fields = new Map<ContractField, JsonValueSummary>();

  private readonly bytes: Buffer;
  private readonly bounds: JsonBounds;
  // Per open container, indexed by depth (1 = the outermost): its kind, its keys (an object) and
  // its values (elements of an array). Plain arrays, grown one depth at a time: cheaper to make
  // per request than typed arrays, and no larger than the deepest nesting seen.
  private readonly kind: number[] = [0];
  private readonly keys: number[] = [0];
  private readonly elements: number[] = [0];
  // Per depth, the keys of the object open there: as (hash, start, end) while all are unescaped
  // ASCII (asciiKeys; by hash past 16, asciiHashes), as folded strings once one is not
  // (stringKeys; in a Set past 16).
  private readonly asciiKeys: Array<number[] | undefined> = [];
  private readonly asciiHashes: Array<Map<number, number> | undefined> = [];
  private readonly stringKeys: Array<string[] | undefined> = [];
  private readonly keySets: Array<Set<string> | undefined> = [];
  private depth = 0;
  private values = 0;
  private mode = M_VALUE;
  private token = T_NONE;
  // The string in progress: where its contents start, a key or a value, whether it has escapes.
  private stringStart = 0;
  private stringIsKey = false;
  private stringEscaped = false;
  private numberState = N_MINUS;
  private tokenStart = 0;
  private literal = 0;
  private literalIndex = 0;
  // The top-level member whose value comes next (a contract field), or undefined.
  private member: ContractField | undefined;
  private utf8Checked = 0;
  private complete = false;
  private nextQuote = -1;
  private nextBackslash = -1;

  constructor(bytes: Buffer, bounds: JsonBounds) {
    this.bytes = bytes;
    this.bounds = bounds;
  }

  /** The pass has ended: the whole body read, or a refusal found. */
  get done(): boolean {
    return this.complete || this.malformed !== undefined || this.bound !== undefined;
  }

  /** Reads on to the byte index `until` (the end of the body at most). */
  scan(until: number): void {
    if (this.done) return;
    const bytes = this.bytes;
    const n = bytes.length;
    const limit = Math.min(until, n);
    if (!this.checkUtf8(limit)) return;
    let i = this.position;
    for (;;) {
      if (this.token !== T_NONE) {
        i = this.continueToken(i, limit);
        if (this.done) return;
        if (this.token !== T_NONE) break;
      }
      i = this.structure(i, limit);
      if (this.done) return;
      if (this.token === T_NONE || i >= limit) break;
    }
    this.position = i;
    if (i >= n) this.finish();
  }

  /**
   * Between tokens: whitespace, structure, and the first byte of a value. Returns where it
   * stopped: `limit`, just past the first byte of a string, number or literal, or the byte
   * that ended the pass.
   */
  private structure(start: number, limit: number): number {
    const bytes = this.bytes;
    let i = start;
    while (i < limit) {
      const c = bytes[i]!;
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
        i++;
        continue;
      }
      const mode = this.mode;
      if (mode === M_AFTER) {
        if (c === 0x2c /* , */) {
          this.mode = this.kind[this.depth] === OBJECT ? M_KEY : M_VALUE;
          i++;
          continue;
        }
        if ((c === 0x7d /* } */ && this.kind[this.depth] === OBJECT) || (c === 0x5d /* ] */ && this.kind[this.depth] === ARRAY)) {
          i++;
          this.close();
          continue;
        }
        return this.fail(i);
      }
      if (mode === M_KEY_OR_CLOSE || mode === M_KEY) {
        if (c === 0x22 /* " */) {
          if (!this.countKey()) return this.stop(i);
          this.startString(i, true);
          const j = this.shortString(i + 1, limit);
          if (this.token !== T_NONE) return j;
          i = j;
          continue;
        }
        if (c === 0x7d /* } */ && mode === M_KEY_OR_CLOSE) {
          i++;
          this.close();
          continue;
        }
        return this.fail(i);
      }
      if (mode === M_COLON) {
        if (c !== 0x3a /* : */) return this.fail(i);
        this.mode = M_VALUE;
        i++;
        continue;
      }
      if (mode === M_END) return this.fail(i);
      // M_VALUE or M_VALUE_OR_CLOSE.
      if (c === 0x5d /* ] */ && mode === M_VALUE_OR_CLOSE) {
        i++;
        this.close();
        continue;
      }
      if (!this.startValue(c, i)) return i;
      i++;
      // The usual scalars end here, without going through the resumable token states.
      const token = this.token;
      if (token === T_STRING) i = this.shortString(i, limit);
      else if (token === T_NUMBER && c !== 0x2d /* - */) i = this.shortInteger(c, i, limit);
      else if (token === T_LITERAL) i = this.shortLiteral(i, limit);
      if (this.done) return i;
      if (this.token !== T_NONE) return i;
    }
    return i;
  }

  /**
   * A string that opened just before `from` and ends, unescaped, within 64 bytes: ended here.
   * Otherwise the string stays in progress from the returned index (the bytes before it are
   * ordinary ones).
   */
  private shortString(from: number, limit: number): number {
    const bytes = this.bytes;
    const stop = Math.min(limit, from + 64);
    let j = from;
    while (j < stop && STRING_STOP[bytes[j]!] === 0) j++;
    if (j < limit && bytes[j] === 0x22) {
      this.token = T_NONE;
      this.endString(j);
      return j + 1;
    }
    return j;
  }

  /** An integer whose first digit `c` is just before `from`: ended here when nothing follows it but a separator. */
  private shortInteger(c: number, from: number, limit: number): number {
    const bytes = this.bytes;
    let j = from;
    while (j < limit && bytes[j]! >= 0x30 && bytes[j]! <= 0x39) j++;
    if (j >= limit) return from;
    const next = bytes[j]!;
    if (next === 0x2e || next === 0x65 || next === 0x45) return from;
    if (c === 0x30 && j > from) return this.fail(from); // a leading zero
    this.endNumber(j);
    return j;
  }

  /** A literal whose first byte is just before `from`, ended here when it is all before `limit`. */
  private shortLiteral(from: number, limit: number): number {
    const word = LITERALS[this.literal]!;
    if (from - 1 + word.length > limit) return from;
    const bytes = this.bytes;
    for (let k = 1; k < word.length; k++) if (bytes[from - 1 + k] !== word[k]) return this.fail(from - 1 + k);
    this.token = T_NONE;
    this.endValue(LITERAL_VALUES[this.literal]);
    return from - 1 + word.length;
  }

  /** Validates UTF-8 up to `limit`, backed off to the start of a character (the next slice checks the rest). */
  private checkUtf8(limit: number): boolean {
    const bytes = this.bytes;
    let v = limit;
    if (v < bytes.length) while (v > this.utf8Checked && (bytes[v]! & 0xc0) === 0x80) v--;
    if (v > this.utf8Checked) {
      const whole = this.utf8Checked === 0 && v === bytes.length;
      if (!isUtf8(whole ? bytes : bytes.subarray(this.utf8Checked, v))) {
        this.malformed = 'utf8';
        return false;
      }
      this.utf8Checked = v;
    }
    return true;
  }

  /** The body ended: a number may end with it; anything else in progress is not JSON. */
  private finish(): void {
    if (this.token === T_NUMBER && N_ACCEPTS[this.numberState]) this.endNumber(this.bytes.length);
    if (this.token !== T_NONE || this.mode !== M_END) {
      this.malformed = 'json';
      return;
    }
    this.complete = true;
  }

  /** Not JSON at `at`: the pass ends. */
  private fail(at: number): number {
    this.position = at;
    this.malformed = 'json';
    return at;
  }

  /** A bound crossed by the byte at `at` (counted as read): the pass ends. */
  private stop(at: number): number {
    this.position = at + 1;
    return at + 1;
  }

  private tooManyValues(): boolean {
    if (++this.values <= this.bounds.maxValues) return true;
    this.bound = { reason: 'BODY_JSON_TOO_MANY_VALUES', detail: `the JSON has more than ${this.bounds.maxValues} values and keys (limits.max_json_values)` };
    return false;
  }

  /** Counts a key in the object open at this depth and as a value; false when a bound is crossed. */
  private countKey(): boolean {
    const depth = this.depth;
    if (++this.keys[depth]! > this.bounds.maxKeysPerObject) {
      this.bound = { reason: 'BODY_JSON_TOO_MANY_KEYS', detail: `an object at depth ${depth} has more than ${this.bounds.maxKeysPerObject} keys (limits.max_json_keys_per_object)` };
      return false;
    }
    return this.tooManyValues();
  }

  /** The first byte of a value; false when the pass has ended (a bound, or not JSON). */
  private startValue(c: number, i: number): boolean {
    const depth = this.depth;
    if (depth === 0) this.topKind = c === 0x7b ? 'object' : c === 0x5b ? 'array' : c === 0x22 ? 'string' : c === 0x74 || c === 0x66 ? 'boolean' : c === 0x6e ? 'null' : 'number';
    const isContainer = c === 0x7b /* { */ || c === 0x5b; /* [ */
    const isScalar = c === 0x22 || c === 0x2d || (c >= 0x30 && c <= 0x39) || c === 0x74 || c === 0x66 || c === 0x6e;
    if (!isContainer && !isScalar) {
      this.fail(i);
      return false;
    }
    if (!this.tooManyValues()) {
      this.stop(i);
      return false;
    }
    this.elements[depth]! += 1;
    if (isContainer) {
      if (depth === this.bounds.maxDepth) {
        this.bound = { reason: 'BODY_JSON_TOO_DEEP', detail: `the JSON nests deeper than ${this.bounds.maxDepth} objects and arrays (limits.max_json_depth)` };
        this.stop(i);
        return false;
      }
      const d = depth + 1;
      this.depth = d;
      const isObject = c === 0x7b;
      this.kind[d] = isObject ? OBJECT : ARRAY;
      this.keys[d] = 0;
      this.elements[d] = 0;
      if (isObject) {
        this.stringKeys[d] = undefined;
        this.keySets[d] = undefined;
        this.asciiHashes[d] = undefined;
      }
      this.mode = isObject ? M_KEY_OR_CLOSE : M_VALUE_OR_CLOSE;
      return true;
    }
    this.tokenStart = i;
    if (c === 0x22) this.startString(i, false);
    else if (c === 0x74 || c === 0x66 || c === 0x6e) {
      this.token = T_LITERAL;
      this.literal = c === 0x74 ? 0 : c === 0x66 ? 1 : 2;
      this.literalIndex = 1;
    } else {
      this.token = T_NUMBER;
      this.numberState = c === 0x2d ? N_MINUS : c === 0x30 ? N_ZERO : N_INT;
    }
    return true;
  }

  private startString(i: number, isKey: boolean): void {
    this.token = T_STRING;
    this.stringStart = i + 1;
    this.stringIsKey = isKey;
    this.stringEscaped = false;
  }

  /** A container closes: the value it was ends. */
  private close(): void {
    const d = this.depth;
    this.depth = d - 1;
    if (this.member === undefined || d !== 2) this.endValue(undefined);
    else if (this.kind[d] === OBJECT) this.endValue({ kind: 'object', length: this.keys[d]! });
    else this.endValue({ kind: 'array', length: this.elements[d]! });
  }

  /** A value ends; `summary` is what the contract keeps of it when it is a contract field's. */
  private endValue(summary: JsonValueSummary | undefined): void {
    if (this.depth === 1 && this.member !== undefined) {
      if (summary !== undefined) this.fields.set(this.member, summary);
      this.member = undefined;
    }
    this.mode = this.depth === 0 ? M_END : M_AFTER;
  }

  /** Goes on with the token in progress; returns where it stopped. */
  private continueToken(start: number, limit: number): number {
    if (this.token === T_STRING) return this.continueString(start, limit);
    const bytes = this.bytes;
    let i = start;
    if (this.token === T_LITERAL) {
      const word = LITERALS[this.literal]!;
      while (i < limit && this.literalIndex < word.length) {
        if (bytes[i] !== word[this.literalIndex]) return this.fail(i);
        i++;
        this.literalIndex++;
      }
      if (this.literalIndex === word.length) {
        this.token = T_NONE;
        this.endValue(LITERAL_VALUES[this.literal]);
      }
      return i;
    }
    // A number.
    let s = this.numberState;
    for (; i < limit; i++) {
      const c = bytes[i]!;
      const digit = c >= 0x30 && c <= 0x39;
      if (s === N_INT || s === N_FRAC || s === N_EXP) {
        if (digit) continue;
        if (s !== N_EXP && (c === 0x65 || c === 0x45)) s = N_E;
        else if (s === N_INT && c === 0x2e) s = N_DOT;
        else break;
      } else if (s === N_ZERO) {
        if (c === 0x2e) s = N_DOT;
        else if (c === 0x65 || c === 0x45) s = N_E;
        else if (digit) return this.fail(i);
        else break;
      } else if (s === N_MINUS) {
        if (!digit) return this.fail(i);
        s = c === 0x30 ? N_ZERO : N_INT;
      } else if (s === N_DOT) {
        if (!digit) return this.fail(i);
        s = N_FRAC;
      } else if (s === N_E) {
        if (c === 0x2b || c === 0x2d) s = N_E_SIGN;
        else if (digit) s = N_EXP;
        else return this.fail(i);
      } else {
        // N_E_SIGN
        if (!digit) return this.fail(i);
        s = N_EXP;
      }
    }
    this.numberState = s;
    if (i < limit) {
      // A byte that is not part of a number ends it, in a state that accepts or not.
      if (!N_ACCEPTS[s]) return this.fail(i);
      this.endNumber(i);
    }
    return i;
  }

  private endNumber(end: number): void {
    this.token = T_NONE;
    const keep = this.depth === 1 && this.member !== undefined;
    // JSON.parse of the number's few bytes: exactly the double JSON.parse of the body would hold.
    this.endValue(keep ? (JSON.parse(this.bytes.toString('latin1', this.tokenStart, end)) as number) : undefined);
  }

  /** The string in progress: on to its closing quote, `limit`, or the pass's end. */
  private continueString(start: number, limit: number): number {
    const bytes = this.bytes;
    let i = start;
    let run = 0;
    while (i < limit) {
      const c = bytes[i]!;
      if (STRING_STOP[c] === 0) {
        i++;
        if (++run < JUMP_AFTER_BYTES) continue;
        // A long run of ordinary bytes: jump to the next quote or backslash, the bytes passed
        // checked for control characters.
        run = 0;
        if (this.nextQuote < i) {
          const found = bytes.indexOf(0x22, i);
          this.nextQuote = found === -1 ? bytes.length : found;
        }
        if (this.nextBackslash < i) {
          const found = bytes.indexOf(0x5c, i);
          this.nextBackslash = found === -1 ? bytes.length : found;
        }
        const to = Math.min(this.nextQuote, this.nextBackslash, limit);
        const control = firstControl(bytes, i, to);
        if (control !== to) return this.fail(control);
        i = to;
        continue;
      }
      run = 0;
      if (c === 0x22) {
        this.token = T_NONE;
        this.endString(i);
        return i + 1;
      }
      if (c < 0x20) {
        // RFC 8259 section 7: control characters must be escaped.
        this.fail(i);
        return i;
      }
      // A backslash: the escape is read whole, even past `limit`.
      this.stringEscaped = true;
      const e = i + 1 < bytes.length ? bytes[i + 1]! : -1;
      if (e !== 0x75 /* u */) {
        if (e === -1 || SIMPLE_ESCAPE[e] === 0) return this.fail(i + 1);
        i += 2;
        continue;
      }
      const unit = hex4(bytes, i + 2);
      if (unit === -1) return this.fail(i + 2);
      i += 6;
      if (unit < 0xd800 || unit > 0xdfff) continue;
      // A surrogate escape: a high one must be followed at once by an escaped low one; a low
      // one alone is lone (raw UTF-8 cannot hold surrogates: isUtf8 refuses them).
      if (unit <= 0xdbff && bytes[i] === 0x5c && bytes[i + 1] === 0x75) {
        const low = hex4(bytes, i + 2);
        if (low >= 0xdc00 && low <= 0xdfff) {
          i += 6;
          continue;
        }
      }
      this.keyProblem ??= { reason: 'BODY_NOT_UTF8', detail: 'a JSON string escapes a lone surrogate' };
    }
    return i;
  }

  /** The closing quote of a string at `end`. */
  private endString(end: number): void {
    if (!this.stringIsKey) {
      const keep = this.depth === 1 && this.member !== undefined;
      this.endValue(keep ? this.decodeString(end) : undefined);
      return;
    }
    this.mode = M_COLON;
    // A key: compared with the object's others while no key problem is known (the first one
    // is the one reported), and matched with the contract fields at the top level.
    if (this.keyProblem !== undefined || this.topKind !== 'object') return;
    const d = this.depth;
    const index = this.keys[d]! - 1;
    if (!this.stringEscaped && this.stringKeys[d] === undefined && this.compareAscii(d, index, end)) return;
    const raw = this.decodeString(end);
    const folded = foldKey(raw);
    if (this.hasKey(d, index, folded)) {
      this.keyProblem = { reason: 'BODY_DUPLICATE_KEY', detail: `a key repeats at depth ${d}${folded === raw ? '' : ' (after case folding)'}` };
      return;
    }
    if (d === 1) this.member = fieldNamed(folded);
  }

  /**
   * The fast way for the usual key, unescaped ASCII in an object whose keys so far are all such:
   * compared as bytes (ASCII letters folded) with the object's others, nothing decoded; in a
   * short list up to 16 keys, by hash past that. False when the key is not one for this way, or
   * two different keys share a hash: then the object's keys are compared as strings from here on.
   */
  private compareAscii(d: number, index: number, end: number): boolean {
    const bytes = this.bytes;
    const start = this.stringStart;
    let h = end - start;
    let upper = false;
    for (let k = start; k < end; k++) {
      let c = bytes[k]!;
      if (c >= 0x80) return false;
      if (c >= 0x41 && c <= 0x5a) {
        c |= 0x20;
        upper = true;
      }
      h = Math.imul(h ^ c, 0x01000193);
    }
    let table = this.asciiKeys[d];
    if (table === undefined) {
      table = [];
      this.asciiKeys[d] = table;
    }
    const length = end - start;
    let other = -1;
    if (index < KEY_LIST_MAX) {
      for (let j = 0; j < index; j++) {
        if (table[3 * j] !== h) continue;
        const at = table[3 * j + 1]!;
        if (table[3 * j + 2]! - at === length && sameAsciiFolded(bytes, start, at, length)) {
          other = at;
          break;
        }
      }
    } else {
      let byHash = this.asciiHashes[d];
      if (byHash === undefined) {
        byHash = new Map();
        for (let j = 0; j < index; j++) {
          if (byHash.has(table[3 * j]!)) return false;
          byHash.set(table[3 * j]!, j);
        }
        this.asciiHashes[d] = byHash;
      }
      const j = byHash.get(h);
      if (j !== undefined) {
        const at = table[3 * j + 1]!;
        if (table[3 * j + 2]! - at !== length || !sameAsciiFolded(bytes, start, at, length)) return false;
        other = at;
      } else byHash.set(h, index);
    }
    if (other !== -1) {
      this.keyProblem = { reason: 'BODY_DUPLICATE_KEY', detail: `a key repeats at depth ${d}${upper || hasUpper(bytes, other, other + length) ? ' (after case folding)' : ''}` };
      return true;
    }
    table[3 * index] = h;
    table[3 * index + 1] = start;
    table[3 * index + 2] = end;
    if (d === 1) this.member = asciiFieldNamed(bytes, start, end);
    return true;
  }

  /**
   * Whether the object at depth `d` has had `key` (a folded string; `index` keys before it); adds
   * it. The object's keys compared as bytes so far are decoded once, when the first key that is
   * not for that way comes.
   */
  private hasKey(d: number, index: number, key: string): boolean {
    let list = this.stringKeys[d];
    if (list === undefined) {
      list = [];
      const table = this.asciiKeys[d];
      for (let j = 0; j < index; j++) list.push(foldKey(this.bytes.toString('latin1', table![3 * j + 1]!, table![3 * j + 2]!)));
      this.stringKeys[d] = list;
    }
    let set = this.keySets[d];
    if (set === undefined && index < KEY_LIST_MAX) {
      for (let k = 0; k < index; k++) if (list[k] === key) return true;
      list[index] = key;
      return false;
    }
    if (set === undefined) {
      set = new Set(list.slice(0, index));
      this.keySets[d] = set;
    }
    if (set.has(key)) return true;
    set.add(key);
    return false;
  }

  /** A string value's contents (quote at `end`), as JSON.parse would hold them. */
  private decodeString(end: number): string {
    const raw = this.bytes.toString('utf8', this.stringStart, end);
    return this.stringEscaped ? (JSON.parse(`"${raw}"`) as string) : raw;
  }
}

const FIELD_BYTES = CONTRACT_FIELDS.map((name) => Buffer.from(name));

/** The contract field an unescaped ASCII key names (letters compared in lower case), if any. */
function asciiFieldNamed(bytes: Uint8Array, start: number, end: number): ContractField | undefined {
  const length = end - start;
  for (let f = 0; f < FIELD_BYTES.length; f++) {
    const name = FIELD_BYTES[f]!;
    if (name.length !== length) continue;
    let k = 0;
    for (; k < length; k++) {
      let c = bytes[start + k]!;
      if (c >= 0x41 && c <= 0x5a) c |= 0x20;
      if (c !== name[k]) break;
    }
    if (k === length) return CONTRACT_FIELDS[f];
  }
  return undefined;
}

function fieldNamed(folded: string): ContractField | undefined {
  return (CONTRACT_FIELDS as readonly string[]).includes(folded) ? (folded as ContractField) : undefined;
}

/** Whether the ASCII bytes at `a` and `b` are the same, letters compared in lower case. */
function sameAsciiFolded(bytes: Uint8Array, a: number, b: number, length: number): boolean {
  for (let k = 0; k < length; k++) {
    let x = bytes[a + k]!;
    let y = bytes[b + k]!;
    if (x === y) continue;
    if (x >= 0x41 && x <= 0x5a) x |= 0x20;
    if (y >= 0x41 && y <= 0x5a) y |= 0x20;
    if (x !== y) return false;
  }
  return true;
}

function hasUpper(bytes: Uint8Array, from: number, to: number): boolean {
  for (let k = from; k < to; k++) if (bytes[k]! >= 0x41 && bytes[k]! <= 0x5a) return true;
  return false;
}

/**
 * Index of the first byte below 0x20 in bytes[from, to), or `to`: four bytes at a time where
 * the buffer is aligned for it (the "has a byte less than" word trick).
 */
export function firstControl(bytes: Uint8Array, from: number, to: number): number {
  let i = from;
  const absolute = bytes.byteOffset + i;
  // Bytes up to a 4-byte boundary of the underlying memory, one at a time.
  for (let k = (4 - (absolute & 3)) & 3; k > 0 && i < to; k--, i++) if (bytes[i]! < 0x20) return i;
  const words = (to - i) >> 2;
  // A typed-array view costs an allocation: worth it for a long run only.
  if (words >= 8) {
    const view = new Uint32Array(bytes.buffer, bytes.byteOffset + i, words);
    for (let w = 0; w < words; w++) {
      const x = view[w]!;
      if (((x - 0x20202020) & ~x & 0x80808080) !== 0) {
        // One of these four bytes is below 0x20.
        for (let j = i + 4 * w; ; j++) if (bytes[j]! < 0x20) return j;
      }
    }
    i += 4 * words;
  }
  for (; i < to; i++) if (bytes[i]! < 0x20) return i;
  return to;
}
