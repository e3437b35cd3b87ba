// The one-pass body contract (src/replay/json-contract-scan.ts) against a reference built the
// obvious way: the structure count of json-structure.ts (which decides the bounds over bytes
// that may not be JSON), a fatal TextDecoder, JSON.parse, and a small recursive checker for
// repeated keys and lone surrogates over the text JSON.parse accepted. Every input, hand-written
// or generated (and then broken byte by byte), must get the same verdict: the same reason code,
// or the same top-level fields. At once and in slices.
import t from 'tap';
import { configSchema } from '../../../src/config/schema.ts';
import { Rejection } from '../../../src/pipeline/reasons.ts';
import { foldKey, jsonBounds, parseReplicationBody, parseReplicationBodyInSlices, type JsonValueSummary } from '../../../src/replay/body-contract.ts';
import { scanJsonStructureSync, type JsonBounds } from '../../../src/replay/json-structure.ts';

const DEFAULTS = jsonBounds(configSchema.shape.limits.parse({}));
const SMALL: JsonBounds = { maxDepth: 4, maxKeysPerObject: 5, maxValues: 40 };

type Verdict = string | { sourcePop: unknown; timestamp: unknown; nonce: unknown; entries: unknown; has: Record<string, boolean> };

// ---- the reference ------------------------------------------------------------------------

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

class Refused {
  constructor(readonly reason: string) {}
}

/** The first repeated key or lone surrogate of a text JSON.parse accepted, by recursive descent. */
function keyCheck(text: string): string | undefined {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const STRING = /"(?:[^"\\]|\\.)*"/sy;
  const SCALAR = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;
  const str = (): string => {
    STRING.lastIndex = i;
    const m = STRING.exec(text)!;
    i = STRING.lastIndex;
    const value = JSON.parse(m[0]) as string;
    if (LONE_SURROGATE.test(value)) throw new Refused('BODY_NOT_UTF8');
    return value;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const seen = new Set<string>();
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        const key = foldKey(str());
        if (seen.has(key)) throw new Refused('BODY_DUPLICATE_KEY');
        seen.add(key);
        ws();
        i++; // :
        value();
        ws();
        if (text[i++] === '}') return;
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i++] === ']') return;
      }
    }
    if (c === '"') {
      str();
      return;
    }
    SCALAR.lastIndex = i;
    SCALAR.exec(text);
    i = SCALAR.lastIndex;
  };
  try {
    value();
    return undefined;
  } catch (err) {
    if (err instanceof Refused) return err.reason;
    throw err;
  }
}

function summary(v: unknown): unknown {
  if (Array.isArray(v)) return { kind: 'array', length: v.length };
  if (v !== null && typeof v === 'object') return { kind: 'object', length: Object.keys(v).length };
  return v;
}

function reference(body: Buffer, bounds: JsonBounds): Verdict {
  const bound = scanJsonStructureSync(body, bounds).problem;
  if (bound) return bound.reason;
  let text: string;
  try {
    text = UTF8.decode(body);
  } catch {
    return 'BODY_NOT_UTF8';
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'BODY_NOT_JSON';
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'BODY_NOT_OBJECT';
  const keyProblem = keyCheck(text);
  if (keyProblem) return keyProblem;
  const folded = new Map<string, unknown>();
  for (const [k, v] of Object.entries(value)) folded.set(foldKey(k), v);
  return {
    sourcePop: summary(folded.get('source_pop')),
    timestamp: summary(folded.get('timestamp')),
    nonce: summary(folded.get('nonce')),
    entries: summary(folded.get('entries')),
    has: { sourcePop: folded.has('source_pop'), timestamp: folded.has('timestamp'), nonce: folded.has('nonce'), entries: folded.has('entries') },
  };
}

// ---- the one pass -------------------------------------------------------------------------

const fieldsOf = (b: { sourcePop: JsonValueSummary | undefined; timestamp: JsonValueSummary | undefined; nonce: JsonValueSummary | undefined; entries: JsonValueSummary | undefined; has: Record<string, boolean> }): Verdict => ({
  sourcePop: b.sourcePop,
  timestamp: b.timestamp,
  nonce: b.nonce,
  entries: b.entries,
  has: { ...b.has },
});

function onePass(body: Buffer, bounds: JsonBounds): Verdict {
  try {
    return fieldsOf(parseReplicationBody(body, bounds));
  } catch (err) {
    if (err instanceof Rejection) return err.reason;
    throw err;
  }
}

async function onePassInSlices(body: Buffer, bounds: JsonBounds, sliceBytes: number): Promise<Verdict> {
  try {
    return fieldsOf(await parseReplicationBodyInSlices(body, bounds, { sliceBytes, pause: async () => {} }));
  } catch (err) {
    if (err instanceof Rejection) return err.reason;
    throw err;
  }
}

// ---- inputs -------------------------------------------------------------------------------

const b = (s: string) => Buffer.from(s);
const raw = (...parts: Array<string | number[]>) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));
const SP = '{"source_pop":"calgary-01"';

const handWritten: Buffer[] = [
  // Whitespace, empty, trailing data.
  b(''), b(' '), b('{}'), b(' \t\r\n{ \t\r\n} \t\r\n'), b('{}{}'), b('{} x'), b('{}\u00a0'), b('{}\f'), b('\v{}'), b('{}\0'),
  raw([0xef, 0xbb, 0xbf], '{}'), raw('{}', [0xef, 0xbb, 0xbf]), raw('{"a":"', [0xef, 0xbb, 0xbf], '"}'),
  // Top-level kinds.
  b('[]'), b('[1]'), b('"x"'), b('1'), b('-0'), b('true'), b('false'), b('null'), b('nul'), b('truee'), b('[1,]'), b('{"a":1,}'), b('{,}'), b('[,1]'),
  // Numbers.
  ...['0', '-0', '01', '-01', '1.', '.5', '1.5', '1e5', '1E+5', '1e-5', '1e', '1e+', '-', '+1', '0x10', '1_0', 'Infinity', 'NaN', '1.5e3.2', '00', '-0.0e0', '123456789012345678901234567890', '1e400', '5e-400', '2.', '1ee5', '1.e5', '0e0'].flatMap((n) => [
    b(`{"timestamp":${n}}`),
    b(`${SP},"timestamp":${n}}`),
    b(`[${n}]`),
    b(n),
  ]),
  // Strings and escapes.
  ...['\\"', '\\\\', '\\/', '\\b', '\\f', '\\n', '\\r', '\\t', '\\u0041', '\\u00e9', '\\u00E9', '\\uD83D\\uDE00', '\\ud83d\\ude00', '\\ud800', '\\udc00', '\\ud800\\ud800', '\\udc00\\ud800', '\\ud800\\udc00\\udc00', '\\ud800x', '\\ud800\\n', '\\ud800\\\\udc00', '\\\\ud800', '\\x', '\\u12', '\\u12g4', '\\U0041', '\\', '\\u', "\\'", '\\0', '\t', '\n', '\u001f', '\u007f', 'é', '😀', '\u2028'].flatMap((s) => [
    b(`${SP},"v":"${s}"}`),
    b(`${SP},"${s}":1}`),
    b(`${SP},"nonce":"${s}"}`),
    b(`{"source_pop":"${s}"}`),
  ]),
  // Invalid UTF-8 and overlong forms, inside and outside strings.
  ...[[0xff], [0xfe], [0x80], [0xc0, 0xaf], [0xc1, 0xbf], [0xe0, 0x80, 0xaf], [0xf0, 0x80, 0x80, 0xaf], [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf], [0xf4, 0x90, 0x80, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xc3], [0xe2, 0x82], [0xc3, 0xa9], [0xf0, 0x9f, 0x98, 0x80]].flatMap((bytes) => [
    raw(`${SP},"v":"`, bytes, '"}'),
    raw(`${SP},"`, bytes, '":1}'),
    raw(`${SP},"v":`, bytes, '}'),
    raw(`${SP}}`, bytes),
    raw(bytes),
    raw(`${SP},"deep":${'['.repeat(40)}"`, bytes, '"}'),
  ]),
  // Duplicates: plain, escaped, case, Unicode folding, nested, siblings.
  b(`${SP},"source_pop":"x"}`), b(`${SP},"source\\u005fpop":"x"}`), b(`${SP},"SOURCE_POP":"x"}`), b(`${SP},"\u017fource_pop":"x"}`), b(`${SP},"\\u017fource_pop":"x"}`),
  b('{"k":1,"\u212a":2}'), b('{"k":1,"\\u212a":2}'), b('{"K":1,"k":2}'), b('{"ß":1,"ss":2}'), b('{"a":{"b":1,"b":2}}'), b('{"a":[{"b":1},{"b":2}]}'), b('{"a":{"b":1},"b":{"a":1}}'),
  b('{"a":1,"a":2,"b":tru}'), b('{"a":1,"a":2} x'), b('[{"a":1,"a":2}]'), b('{"a":"\\ud800","a":1}'), b('{"a":1,"a":"\\ud800"}'), b('{"\\ud800":1,"\\ud800":2}'),
  b('{"":1,"":2}'), b('{"":1,"\\u0000":2}'), b('{"\\u0000":1,"\\u0000":2}'), b('{"__proto__":1,"__proto__":2}'), b('{"__proto__":{"a":1}}'), b('{"constructor":1}'),
  b(`{${Array.from({ length: 20 }, (_, i) => `"k${i}":${i}`).join(',')},"k3":0}`), b(`{${Array.from({ length: 20 }, (_, i) => `"k${i}":${i}`).join(',')},"K19":0}`),
  b(`{${Array.from({ length: 20 }, (_, i) => `"k${i}":${i}`).join(',')}}`),
  // Past 16 keys in one object (compared by hash), with repeats by case, escape and folding.
  ...[17, 40].flatMap((n) => {
    const keys = Array.from({ length: n }, (_, i) => `"key_${i}":${i}`).join(',');
    return [
      b(`{${keys}}`), b(`{${keys},"KEY_3":0}`), b(`{${keys},"key_${n - 1}":0}`), b(`{${keys},"key\u005f7":0}`), b(`{${keys},"\u212aey_2":0}`), b(`{${keys},"Key_2":0}`),
      b(`{"k":0,${keys},"K":0}`), b(`{"é":0,${keys},"É":0}`), b(`{${keys},"é":0,"x":1,"X":2}`), b(`${SP},${keys},"Source_Pop":"x"}`),
    ];
  }),
  // The contract fields in every shape.
  b(`${SP},"entries":[]}`), b(`${SP},"entries":[1,[2,3],{"a":[]},"x"]}`), b(`${SP},"entries":{}}`), b(`${SP},"entries":{"a":1,"b":2}}`), b(`${SP},"entries":null}`), b(`${SP},"Entries":[1]}`),
  b('{"source_pop":["calgary-01"]}'), b('{"source_pop":{"a":"b"}}'), b('{"source_pop":null}'), b('{"source_pop":true}'), b('{"source_pop":12}'), b('{"a":{"source_pop":"x"}}'), b('{"a":[{"source_pop":"x","timestamp":1}]}'),
  b(`${SP},"timestamp":1763800000,"nonce":"msg_1"}`), b(`${SP},"TimeStamp":1.7638e9,"NONCE":null}`), b(`${SP},"timestamp":"1763800000"}`), b(`${SP},"timestamp":[1763800000]}`), b(`${SP},"nonce":{"a":1}}`),
  b(`{"source_pop":"calgary-01"${',"x":1'.repeat(3)}}`),
  // Deep and wide, around the bounds.
  b(`{"d":${'['.repeat(30)}${']'.repeat(30)}}`), b(`{"d":${'['.repeat(31)}${']'.repeat(31)}}`), b(`{"d":${'['.repeat(32)}${']'.repeat(32)}}`), b(`${'['.repeat(40)}`), b(`{"a":1 ${'['.repeat(40)}`), b(`x${'{'.repeat(40)}`), raw([0xff], '['.repeat(40)),
  b(`{"d":${'{"a":'.repeat(31)}1${'}'.repeat(31)}}`), b(`{"d":${'{"a":'.repeat(32)}1${'}'.repeat(32)}}`),
  b(`{${Array.from({ length: 1001 }, (_, i) => `"k${i}":0`).join(',')}}`), b(`{${Array.from({ length: 1000 }, (_, i) => `"k${i}":0`).join(',')}}`),
  // Long strings: the native skip, with controls, escapes and quotes at every distance.
  ...[15, 16, 17, 31, 32, 33, 100, 1000].flatMap((n) => [
    b(`${SP},"v":"${'a'.repeat(n)}"}`),
    b(`${SP},"v":"${'a'.repeat(n)}\\"${'b'.repeat(n)}"}`),
    b(`${SP},"v":"${'a'.repeat(n)}\\\\"}`),
    b(`${SP},"v":"${'a'.repeat(n)}\\\\\\"${'b'.repeat(n)}"}`),
    b(`${SP},"v":"${'a'.repeat(n)}\t${'b'.repeat(n)}"}`),
    b(`${SP},"v":"${'a'.repeat(n)}\n"}`),
    b(`${SP},"v":"${'a'.repeat(n)}\u0001${'b'.repeat(3)}"}`),
    b(`${SP},"v":"${'é'.repeat(n)}"}`),
    b(`${SP},"v":"${'a'.repeat(n)}\\ud800"}`),
    b(`${SP},"v":"${'a'.repeat(n)}`),
    b(`${SP},"${'k'.repeat(n)}":1,"${'k'.repeat(n)}":2}`),
    b(`${SP},"${'k'.repeat(n)}":1,"${'K'.repeat(n)}":2}`),
  ]),
];

// A seeded generator of JSON-ish bodies: mostly valid, with the features the contract cares
// about, then broken by a few byte edits.
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function generate(r: () => number): Buffer {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const ws = () => (r() < 0.8 ? '' : pick([' ', '\n', '\t', '\r\n  ', '  ']));
  const escapeChar = (ch: string) => {
    const code = ch.charCodeAt(0);
    const hex = code.toString(16).padStart(4, '0');
    return r() < 0.5 ? `\\u${hex}` : `\\u${hex.toUpperCase()}`;
  };
  const stringBody = (s: string) => {
    let out = '';
    for (const ch of s) {
      if (ch === '"' || ch === '\\') out += `\\${ch}`;
      else if (r() < 0.15) out += [...ch].length === 1 && ch.length === 2 ? `${escapeChar(ch[0]!)}${escapeChar(ch[1]!)}` : escapeChar(ch);
      else out += ch;
    }
    return out;
  };
  const KEYS = ['id', 'op', 'k', 'K', 'a', 'A', 'source_pop', 'SOURCE_POP', 'ſource_pop', 'timestamp', 'nonce', 'entries', 'Entries', 'é', 'É', 'ß', 'ss', '\u212a', '😀', '', 'x"y', 'a\\b', 'long_key_name_that_goes_on_for_a_while_1234567890'];
  const STRINGS = ['', 'calgary-01', 'zurich-01', 'x', 'é', '😀', 'a"b', 'back\\slash', '\u2028', 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W', 'a'.repeat(40), `${'b'.repeat(20)}"${'c'.repeat(20)}`];
  const SPECIAL = ['"\\ud800"', '"\\udc00"', '"\\ud83d\\ude00"', '"\\uD83D"', '"a\\ud800b"', '"\\ud800\\ud800\\udc00"'];
  const NUMBERS = ['0', '-0', '1', '-1', '12.5', '-0.5e-3', '1E10', '1763800000', '1.7638e9', '99999999999999999999', '3.141592653589793'];
  const value = (depth: number): string => {
    const x = r();
    if (depth < 6 && x < 0.18) {
      const n = Math.floor(r() * 6);
      const members = Array.from({ length: n }, () => `${ws()}"${stringBody(pick(KEYS))}"${ws()}:${ws()}${value(depth + 1)}${ws()}`);
      return `{${members.join(',')}}`;
    }
    if (depth < 6 && x < 0.32) return `[${Array.from({ length: Math.floor(r() * 5) }, () => `${ws()}${value(depth + 1)}${ws()}`).join(',')}]`;
    if (x < 0.6) return `"${stringBody(pick(STRINGS))}"`;
    if (x < 0.63) return pick(SPECIAL);
    if (x < 0.85) return pick(NUMBERS);
    return pick(['true', 'false', 'null']);
  };
  const members: string[] = [];
  if (r() < 0.8) members.push(`"source_pop":"${stringBody(r() < 0.8 ? 'calgary-01' : pick(STRINGS))}"`);
  const extra = Math.floor(r() * 5);
  for (let i = 0; i < extra; i++) members.push(`${ws()}"${stringBody(pick(KEYS))}"${ws()}:${ws()}${value(1)}`);
  if (r() < 0.5) members.push(`"entries":${value(1)}`);
  members.sort(() => r() - 0.5);
  const top = r() < 0.93 ? `{${members.join(',')}}` : value(0);
  return Buffer.from(`${ws()}${top}${ws()}`);
}

const NASTY = [0x22, 0x5c, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x20, 0x0a, 0x00, 0x01, 0x1f, 0x7f, 0x80, 0xbf, 0xc0, 0xc3, 0xe2, 0xed, 0xef, 0xf0, 0xf4, 0xf8, 0xff, 0x30, 0x2d, 0x2e, 0x65, 0x75, 0x74, 0x6e];

function mutate(body: Buffer, r: () => number): Buffer {
  const bytes = [...body];
  const edits = 1 + Math.floor(r() * 3);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(r() * (bytes.length + 1));
    const x = r();
    const nasty = NASTY[Math.floor(r() * NASTY.length)]!;
    if (x < 0.35 && bytes.length > 0) bytes[Math.min(at, bytes.length - 1)] = nasty;
    else if (x < 0.65) bytes.splice(at, 0, nasty);
    else if (x < 0.9) bytes.splice(at, 1);
    else bytes.length = at;
  }
  return Buffer.from(bytes);
}

// ---- the comparisons ----------------------------------------------------------------------

t.test('hand-written edge cases: the verdicts of the reference, at once and in slices', async (t) => {
  for (const bounds of [DEFAULTS, SMALL]) {
    for (const body of handWritten) {
      const expected = reference(body, bounds);
      const name = JSON.stringify(body.toString('latin1').slice(0, 60));
      t.same(onePass(body, bounds), expected, name);
      for (const slice of [1, 3, 16]) t.same(await onePassInSlices(body, bounds, slice), expected, `${name} in slices of ${slice}`);
    }
  }
});

t.test('generated bodies and their broken variants: the verdicts of the reference', async (t) => {
  const r = rng(22);
  const counts = new Map<string, number>();
  let mismatches = 0;
  let cases = 0;
  for (let n = 0; n < 3000; n++) {
    const valid = generate(r);
    const variants = [valid, mutate(valid, r), mutate(valid, r), mutate(valid, r)];
    for (const body of variants) {
      for (const bounds of [DEFAULTS, SMALL]) {
        cases += 1;
        const expected = reference(body, bounds);
        const key = typeof expected === 'string' ? expected : 'passed';
        counts.set(key, (counts.get(key) ?? 0) + 1);
        const got = onePass(body, bounds);
        const sliced = n % 10 === 0 ? await onePassInSlices(body, bounds, 1 + (n % 7)) : got;
        if (JSON.stringify(got) !== JSON.stringify(expected) || JSON.stringify(sliced) !== JSON.stringify(expected)) {
          mismatches += 1;
          if (mismatches <= 10) t.fail('a verdict differs', { body: body.toString('latin1'), bytes: [...body].map((x) => x.toString(16)).join(' '), expected, got, sliced });
        }
      }
    }
  }
  t.equal(mismatches, 0, `${cases} cases, the same verdict every time`);
  // The corpus reaches every verdict, so that the comparison means something for each.
  for (const reason of ['passed', 'BODY_NOT_UTF8', 'BODY_NOT_JSON', 'BODY_NOT_OBJECT', 'BODY_DUPLICATE_KEY', 'BODY_JSON_TOO_DEEP', 'BODY_JSON_TOO_MANY_KEYS', 'BODY_JSON_TOO_MANY_VALUES']) {
    t.ok((counts.get(reason) ?? 0) >= 20, `${reason}: ${counts.get(reason) ?? 0} cases`);
  }
});
