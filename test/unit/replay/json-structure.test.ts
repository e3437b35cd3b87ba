// The structure bounds over the raw bytes (issue 15, class 7(b)): depth, keys per object and
// values in total, each refused with its own code before anything is parsed, and the work
// counted: a refused body costs a pass up to the byte past the bound, whatever its size; a
// body that passes costs one step per byte, in ceil(n / slice) slices.
import t from 'tap';
import { configSchema } from '../../../src/config/schema.ts';
import { jsonBounds, parseReplicationBody, parseReplicationBodyInSlices, type SlicedParseStats } from '../../../src/replay/body-contract.ts';
import { JsonContractScanner } from '../../../src/replay/json-contract-scan.ts';
import { JsonStructureScanner, scanJsonStructure, scanJsonStructureSync, type JsonBounds } from '../../../src/replay/json-structure.ts';
import { Rejection } from '../../../src/pipeline/reasons.ts';

const DEFAULTS = jsonBounds(configSchema.shape.limits.parse({}));
const bytes = (s: string) => Buffer.from(s);
const reasonOf = (s: string | Buffer, b: JsonBounds = DEFAULTS) => scanJsonStructureSync(typeof s === 'string' ? bytes(s) : s, b).problem?.reason;

// The four bodies of the finding, at size n (they cost JSON.parse 1 to 1.5 s each at full size).
const HEAD = '{"source_pop":"calgary-01","entries":';
const pathological = {
  nestedArrays: (n: number) => `${HEAD}${'['.repeat(n)}${']'.repeat(n)}}`,
  keysInOneObject: (n: number) => `{${Array.from({ length: n }, (_, i) => `"k${i}":0`).join(',')}}`,
  emptyObjects: (n: number) => `${HEAD}[${Array(n).fill('{}').join(',')}]}`,
  escapedKeys: (n: number) => `{${Array.from({ length: n }, (_, i) => `"\\u00e9\\u00e8\\u00ea${i}":0`).join(',')}}`,
};

t.test('the documented defaults', async (t) => {
  t.same(DEFAULTS, { maxDepth: 32, maxKeysPerObject: 1000, maxValues: 200_000 });
});

t.test('counts are exact for JSON, whatever strings hold', async (t) => {
  const count = (s: string) => {
    const scanner = new JsonStructureScanner(DEFAULTS);
    t.equal(scanner.scan(bytes(s)), undefined, s);
    return scanner.values;
  };
  // object, key a, array, 1, "x", true, null, object, key b, -1.5e3
  t.equal(count('{"a":[1,"x",true,null,{"b":-1.5e3}]}'), 10);
  t.equal(count(' { "a" : [ 1 , 2 ] } '), 5, 'whitespace');
  t.equal(count('{"a":"[[[{{,\\"]]:","b\\\\":"\\\\"}'), 5, 'brackets, commas, escaped quotes and backslashes inside strings count nothing');
  t.equal(count('{"\\u005b":"\\u007b"}'), 3);
  t.equal(count('{}'), 1);
  t.equal(count(''), 0);
});

t.test('depth: max_json_depth passes, one more is refused', async (t) => {
  const nest = (d: number) => `${'['.repeat(d - 1)}{}${']'.repeat(d - 1)}`;
  const b = { ...DEFAULTS, maxDepth: 5 };
  t.equal(reasonOf(nest(5), b), undefined);
  t.equal(reasonOf(nest(6), b), 'BODY_JSON_TOO_DEEP');
  t.equal(reasonOf('{"a":{"b":{"c":{"d":{"e":1}}}}}', b), undefined, 'objects: depth 5');
  t.equal(reasonOf('{"a":{"b":{"c":{"d":{"e":{}}}}}}', b), 'BODY_JSON_TOO_DEEP');
  t.equal(reasonOf(`[${'[]'.repeat(1000)}]`, { ...b, maxDepth: 2 }), undefined, 'siblings do not add up: depth is what is open at once');
  t.equal(reasonOf('"[[[[[[[[[[[["', b), undefined, 'brackets in a string are not nesting');
});

t.test('keys per object: max_json_keys_per_object passes, one more is refused', async (t) => {
  const obj = (n: number) => `{${Array.from({ length: n }, (_, i) => `"k${i}":{"x":1}`).join(',')}}`;
  const b = { ...DEFAULTS, maxKeysPerObject: 10 };
  t.equal(reasonOf(obj(10), b), undefined);
  t.equal(reasonOf(obj(11), b), 'BODY_JSON_TOO_MANY_KEYS');
  t.equal(reasonOf(`[${Array(50).fill(obj(10)).join(',')}]`, b), undefined, 'counted per object: fifty objects of ten keys pass');
  t.equal(reasonOf(`{"a":${obj(10)},"b":1,"c":2}`, { ...b, maxKeysPerObject: 3 }), 'BODY_JSON_TOO_MANY_KEYS', 'an inner object does not reset its parent');
  t.equal(reasonOf(`{"a":[${Array(20).fill('"s"').join(',')}],"b":1}`, { ...b, maxKeysPerObject: 2 }), undefined, 'strings in an array are not keys');
  t.equal(reasonOf(`{"k":"a\\",\\"b\\":\\"c","d\\"":1}`, { ...b, maxKeysPerObject: 2 }), undefined, 'quoted commas and colons make no keys');
});

t.test('values in total: max_json_values passes, one more is refused (keys count)', async (t) => {
  const b = { ...DEFAULTS, maxValues: 7 };
  t.equal(reasonOf('[1,2,3,4,5,6]', b), undefined, 'array + 6 numbers');
  t.equal(reasonOf('[1,2,3,4,5,6,7]', b), 'BODY_JSON_TOO_MANY_VALUES');
  t.equal(reasonOf('{"a":1,"b":2,"c":3}', b), undefined, 'object + 3 keys + 3 values');
  t.equal(reasonOf('{"a":1,"b":2,"c":3,"d":4}', b), 'BODY_JSON_TOO_MANY_VALUES');
  t.equal(reasonOf('[{},{},{},{},{},{}]', b), undefined);
  t.equal(reasonOf('[{},{},{},{},{},{},[]]', b), 'BODY_JSON_TOO_MANY_VALUES');
  t.equal(reasonOf('[true,false,null,-0.5e+10,"s",1]', b), undefined, 'a number or literal is one value, however long');
});

t.test('the four pathological bodies: refused after the same work at n and 2n', async (t) => {
  const cases: Array<[keyof typeof pathological, number, string]> = [
    ['nestedArrays', 200_000, 'BODY_JSON_TOO_DEEP'],
    ['keysInOneObject', 20_000, 'BODY_JSON_TOO_MANY_KEYS'],
    ['emptyObjects', 600_000, 'BODY_JSON_TOO_MANY_VALUES'],
    ['escapedKeys', 20_000, 'BODY_JSON_TOO_MANY_KEYS'],
  ];
  for (const [name, n, reason] of cases) {
    const small = bytes(pathological[name](n));
    const large = bytes(pathological[name](2 * n));
    const a = await scanJsonStructure(small, DEFAULTS);
    const b = await scanJsonStructure(large, DEFAULTS);
    t.equal(a.problem?.reason, reason, `${name}: ${reason}`);
    t.equal(b.problem?.reason, reason, `${name} at 2n: ${reason}`);
    t.equal(b.bytesScanned, a.bytesScanned, `${name}: the same bytes examined at n and 2n (${a.bytesScanned} of ${small.length})`);
    t.equal(b.slices, a.slices, `${name}: the same slices at n and 2n`);
    t.ok(a.bytesScanned < small.length, `${name}: stopped before the end`);
  }
  // Exactly where: the prefix (the body object, depth 1), then 32 brackets, the last opening depth 33.
  const deep = await scanJsonStructure(bytes(pathological.nestedArrays(1000)), DEFAULTS);
  t.equal(deep.bytesScanned, HEAD.length + 32, 'the 32nd bracket is the last byte read');
});

t.test('a body that passes: one step per byte, ceil(n / slice) slices, n and 2n', async (t) => {
  const entry = '{"id":12345,"op":"upsert","key":"user:\\"42\\"","value":{"name":"\\u00e9l\\u00e8ve","tags":["a","b"]}}';
  const body = (entries: number) => bytes(`{"source_pop":"calgary-01","entries":[${Array(entries).fill(entry).join(',')}],"timestamp":1763800000}`);
  for (const slice of [1000, 4096, 65_536]) {
    const results = [];
    for (const n of [2000, 4000]) {
      const b = body(n);
      let pauses = 0;
      const r = await scanJsonStructure(b, DEFAULTS, { sliceBytes: slice, pause: async () => void pauses++ });
      t.equal(r.problem, undefined);
      t.equal(r.bytesScanned, b.length, `every byte examined once (slice ${slice}, ${n} entries)`);
      t.equal(r.slices, Math.ceil(b.length / slice), 'ceil(n / slice) slices');
      t.equal(pauses, r.slices - 1, 'the event loop given back between every two slices');
      results.push(r);
    }
    t.ok(results[1]!.slices <= 2 * results[0]!.slices && results[1]!.slices >= 2 * results[0]!.slices - 1, 'twice the body, twice the slices');
  }
});

t.test('slice boundaries change nothing (inside escapes, strings, numbers, literals)', async (t) => {
  const texts = [
    '{"a":[1,"x\\"]",true,null,{"b\\\\":-1.5e3}],"c":"\\u00e9[{","d":12345678}',
    `[${'[{"k":"v\\\\"},123,false]'.repeat(20)}]`,
    `{${Array.from({ length: 12 }, (_, i) => `"\\"k${i}":${i}`).join(',')}}`,
    '[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]',
  ];
  const b = { maxDepth: 8, maxKeysPerObject: 10, maxValues: 60 };
  for (const text of texts) {
    const whole = new JsonStructureScanner(b);
    const expected = whole.scan(bytes(text));
    for (const slice of [1, 2, 3, 7]) {
      const r = await scanJsonStructure(bytes(text), b, { sliceBytes: slice, pause: async () => {} });
      t.same(r.problem, expected, `${text.slice(0, 20)}… in slices of ${slice}`);
      t.equal(r.bytesScanned, whole.bytesScanned);
    }
  }
});

t.test('the contract pass in slices finds what it finds at once', async (t) => {
  const texts = [
    '{"a":1,"b":{"a":1,"b":[{"x":"\\"","y":1}]},"c":[{},{}]}',
    '{"a":1,"b":{"a":1,"b":[{"x":"\\"","x":1}]},"c":[{},{}]}',
    '{"source_pop":"calgary-01","\\u017fource_pop":1}',
    '{"a":"\\ud800"}',
    '{"a":"\\ud83d\\ude00","b":"\\ud83d"}',
    `{"e":[${Array(200).fill('{"id":1,"v":"\\u00e9","n":-12.5e+3,"t":true,"f":false,"z":null}').join(',')}],"e":1}`,
    `{"source_pop":"calgary-01","timestamp":1763800000,"nonce":"${'n'.repeat(70)}","entries":[1,[2],{"3":3}]}`,
    `{"s":"${'\u00e9'.repeat(40)}","k":"${'x'.repeat(100)}\\n${'y'.repeat(100)}"}`,
    '{"a":1,"b":tru}',
    '{"a":1,"b":"\\x"}',
  ];
  const seen = (s: JsonContractScanner) => ({ malformed: s.malformed, bound: s.bound, keyProblem: s.keyProblem, topKind: s.topKind, fields: [...s.fields] });
  for (const text of texts) {
    const body = bytes(text);
    const whole = new JsonContractScanner(body, DEFAULTS);
    whole.scan(body.length);
    for (const slice of [1, 2, 5, 64]) {
      const scanner = new JsonContractScanner(body, DEFAULTS);
      while (!scanner.done) scanner.scan(scanner.position + slice);
      t.same(seen(scanner), seen(whole), `${text.slice(0, 24)}… in slices of ${slice}`);
    }
  }
});

t.test('parseReplicationBodyInSlices: the same outcomes, the work counted', async (t) => {
  const outcome = async (text: string, stats?: SlicedParseStats) => {
    try {
      const body = await parseReplicationBodyInSlices(bytes(text), DEFAULTS, { sliceBytes: 256, pause: async () => {} }, stats);
      return body.sourcePop;
    } catch (err) {
      if (err instanceof Rejection) return err.reason;
      throw err;
    }
  };
  const entries = Array(100).fill('{"id":1,"op":"set","v":"x"}').join(',');
  const good = `{"source_pop":"calgary-01","entries":[${entries}]}`;
  const stats: SlicedParseStats = { slices: 0, recountSlices: 0 };
  t.equal(await outcome(good, stats), 'calgary-01');
  t.same(stats, { slices: Math.ceil(good.length / 256), recountSlices: 0 }, 'one pass, ceil(n / slice) slices');
  t.equal(await outcome(`{"source_pop":"calgary-01","entries":[${entries}],"entries":[]}`), 'BODY_DUPLICATE_KEY');
  t.equal(await outcome(`{"source_pop":"calgary-01","entries":[${entries}],"x":"\\udc00"}`), 'BODY_NOT_UTF8');
  const broken: SlicedParseStats = { slices: 0, recountSlices: 0 };
  const unterminated = `{"source_pop":"calgary-01","entries":[${entries}]`;
  t.equal(await outcome(unterminated, broken), 'BODY_NOT_JSON');
  t.equal(broken.recountSlices, Math.ceil(unterminated.length / 256), 'a body that is not JSON: the structure count runs again, to find a bound before the syntax error');
  t.equal(await outcome(`[${entries}]`), 'BODY_NOT_OBJECT');
  t.equal(await outcome(`{"a":1 ${'['.repeat(40)}`), 'BODY_JSON_TOO_DEEP', 'a bound past the syntax error comes first, as before');
  const deep: SlicedParseStats = { slices: 0, recountSlices: 0 };
  t.equal(await outcome(pathological.nestedArrays(100_000), deep), 'BODY_JSON_TOO_DEEP');
  t.same(deep, { slices: 1, recountSlices: 0 }, 'refused in the first slice; nothing decoded');
  t.equal(parseReplicationBody(bytes(good), DEFAULTS).sourcePop, 'calgary-01', 'the same at once');
});

t.test('with the default pause, other callbacks run between two slices', async (t) => {
  const body = bytes(`${HEAD}[${Array(20_000).fill('{"id":1,"v":"x"}').join(',')}]}`);
  let done = false;
  const scan = scanJsonStructure(body, DEFAULTS).then((r) => {
    done = true;
    return r;
  });
  // Queued after the scan's first pause: it runs while the scan still has slices to go.
  let ranDuringScan = false;
  setImmediate(() => (ranDuringScan = !done));
  const r = await scan;
  t.ok(r.slices >= 3, `${r.slices} slices`);
  t.ok(ranDuringScan, 'another callback ran between two slices');
});
