// The body contract: strict JSON object, no key the backup could read differently, the
// authenticated POP as source, timestamp and nonce agreeing with the signed headers.
import t from 'tap';
import { Rejection } from '../../../src/pipeline/reasons.ts';
import { checkContentType, checkReplicationBody, parseReplicationBody } from '../../../src/replay/body-contract.ts';
import { configSchema } from '../../../src/config/schema.ts';
import { jsonBounds } from '../../../src/replay/body-contract.ts';

// The documented defaults (limits.max_json_*).
const BOUNDS = jsonBounds(configSchema.shape.limits.parse({}));

const facts = { pop: 'calgary-01', timestampSeconds: 1763800000, webhookId: 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W' };

/** The parse alone (no field checks): the reason it refuses with, or undefined. */
function parseProblem(text: string, bounds = BOUNDS): string | undefined {
  try {
    parseReplicationBody(Buffer.from(text), bounds);
    return undefined;
  } catch (err) {
    if (err instanceof Rejection) return err.reason;
    throw err;
  }
}

function outcome(body: string | Buffer, f: typeof facts | { pop: string; timestampSeconds: undefined; webhookId: undefined } = facts): string | number | undefined {
  try {
    return checkReplicationBody(parseReplicationBody(typeof body === 'string' ? Buffer.from(body) : body, BOUNDS), f);
  } catch (err) {
    if (err instanceof Rejection) return err.reason;
    throw err;
  }
}

t.test('a good body: the entry count comes back', async (t) => {
  t.equal(outcome(JSON.stringify({ source_pop: 'calgary-01', entries: [{ id: 1 }, { id: 2 }], timestamp: 1763800000, nonce: facts.webhookId })), 2);
  t.equal(outcome('{"source_pop":"calgary-01"}'), undefined, 'entries, timestamp and nonce may be absent');
  t.equal(outcome(' \n{"source_pop" : "calgary-01", "entries": []}\t'), 0, 'JSON whitespace is fine');
  t.equal(outcome('{"source_pop":"calgary-01","entries":[{"a":{"b":[{"c":1},{"c":2}]}},{"a":1,"A_":2}]}'), 2, 'the same key in sibling objects is not a repeat');
  t.equal(outcome('{"source_pop":"calgary-01","text":"\\"quoted\\" \\\\","k":"\\u00e9\\ud83d\\ude00"}'), undefined, 'escapes and surrogate pairs');
  t.equal(outcome('{"source_pop":"calgary-01","timestamp":999}', { pop: 'calgary-01', timestampSeconds: undefined, webhookId: undefined }), undefined, 'unsigned: nothing to compare with');
});

t.test('refusals, each with its own reason', async (t) => {
  const cases: Array<[string, string | Buffer, string]> = [
    ['invalid UTF-8 byte', Buffer.from('{"source_pop":"calgary-01","x":"\xff"}', 'latin1'), 'BODY_NOT_UTF8'],
    ['overlong UTF-8 encoding of "/"', Buffer.concat([Buffer.from('{"source_pop":"calgary-01","x":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')]), 'BODY_NOT_UTF8'],
    ['UTF-8 encoded surrogate', Buffer.concat([Buffer.from('{"source_pop":"calgary-01","x":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')]), 'BODY_NOT_UTF8'],
    ['lone surrogate escape in a value', '{"source_pop":"calgary-01","x":"\\ud800"}', 'BODY_NOT_UTF8'],
    ['lone low surrogate escape in a key', '{"source_pop":"calgary-01","\\udc00":1}', 'BODY_NOT_UTF8'],
    ['byte order mark', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"source_pop":"calgary-01"}')]), 'BODY_NOT_JSON'],
    ['empty body', '', 'BODY_NOT_JSON'],
    ['trailing garbage', '{"source_pop":"calgary-01"}x', 'BODY_NOT_JSON'],
    ['trailing comma', '{"source_pop":"calgary-01",}', 'BODY_NOT_JSON'],
    ['single quotes', "{'source_pop':'calgary-01'}", 'BODY_NOT_JSON'],
    ['NaN', '{"source_pop":"calgary-01","x":NaN}', 'BODY_NOT_JSON'],
    ['an array', '[{"source_pop":"calgary-01"}]', 'BODY_NOT_OBJECT'],
    ['a string', '"calgary-01"', 'BODY_NOT_OBJECT'],
    ['null', 'null', 'BODY_NOT_OBJECT'],
    ['a number', '42', 'BODY_NOT_OBJECT'],
    ['duplicate top-level key', '{"source_pop":"calgary-01","source_pop":"zurich-01"}', 'BODY_DUPLICATE_KEY'],
    ['duplicate by escape', '{"source_pop":"calgary-01","source\\u005fpop":"zurich-01"}', 'BODY_DUPLICATE_KEY'],
    ['duplicate by case', '{"source_pop":"calgary-01","SOURCE_POP":"zurich-01"}', 'BODY_DUPLICATE_KEY'],
    ['duplicate by Unicode folding (long s)', '{"source_pop":"calgary-01","\u017fource_pop":"zurich-01"}', 'BODY_DUPLICATE_KEY'],
    ['duplicate by Kelvin sign', '{"source_pop":"calgary-01","entries":[{"k":1,"\u212a":2}]}', 'BODY_DUPLICATE_KEY'],
    ['duplicate deep inside entries', '{"source_pop":"calgary-01","entries":[{"id":1},{"id":2,"data":{"a":[{"x":1,"x":2}]}}]}', 'BODY_DUPLICATE_KEY'],
    ['duplicate after a nested object', '{"source_pop":"calgary-01","a":{"b":1},"a":2}', 'BODY_DUPLICATE_KEY'],
    ['no source_pop', '{"entries":[]}', 'BODY_SOURCE_POP_MISSING'],
    ['source_pop not a string', '{"source_pop":["calgary-01"]}', 'BODY_SOURCE_POP_MISSING'],
    ['source_pop of another POP', '{"source_pop":"zurich-01"}', 'BODY_SOURCE_POP_MISMATCH'],
    ['source_pop differing in case', '{"source_pop":"Calgary-01"}', 'BODY_SOURCE_POP_MISMATCH'],
    ['source_pop under another case only (Go would read it)', '{"Source_Pop":"zurich-01"}', 'BODY_SOURCE_POP_MISMATCH'],
    ['timestamp differs', '{"source_pop":"calgary-01","timestamp":1763800001}', 'BODY_TIMESTAMP_MISMATCH'],
    ['timestamp as a string', '{"source_pop":"calgary-01","timestamp":"1763800000"}', 'BODY_TIMESTAMP_MISMATCH'],
    ['timestamp under another case', '{"source_pop":"calgary-01","TimeStamp":1}', 'BODY_TIMESTAMP_MISMATCH'],
    ['timestamp null', '{"source_pop":"calgary-01","timestamp":null}', 'BODY_TIMESTAMP_MISMATCH'],
    ['nonce differs', '{"source_pop":"calgary-01","nonce":"something-else-entirely"}', 'BODY_NONCE_MISMATCH'],
    ['entries not an array', '{"source_pop":"calgary-01","entries":{"0":{}}}', 'BODY_ENTRIES_INVALID'],
  ];
  for (const [name, body, reason] of cases) t.equal(outcome(body), reason, name);
});

t.test('the pass is iterative: deep nesting, where the bounds allow it, is fine', async (t) => {
  const depth = 100_000;
  const deepBounds = { maxDepth: 2 * depth, maxKeysPerObject: 1000, maxValues: 1_000_000 };
  const text = `{"source_pop":"calgary-01","deep":${'['.repeat(depth)}${']'.repeat(depth)},"d2":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`;
  t.equal(parseProblem(text, deepBounds), undefined);
  t.equal(parseProblem(`{"a":${'{"a":'.repeat(5000)}{"b":1,"b":2}${'}'.repeat(5000)}}`, deepBounds), 'BODY_DUPLICATE_KEY');
});

t.test('content type', async (t) => {
  const reason = (v: string | undefined) => {
    try {
      checkContentType(v);
      return 'ok';
    } catch (err) {
      return (err as Rejection).reason;
    }
  };
  t.equal(reason('application/json'), 'ok');
  t.equal(reason('Application/JSON; charset=UTF-8'), 'ok');
  t.equal(reason('application/json;charset="utf-8"'), 'ok');
  for (const bad of [undefined, '', 'text/plain', 'application/json-patch+json', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', 'application/json; boundary=x', 'application/jsonx']) {
    t.equal(reason(bad), 'BODY_CONTENT_TYPE_INVALID', String(bad));
  }
});

t.test('escapes are found wherever they sit: before, between and after plain strings', async (t) => {
  const plain = Array.from({ length: 50 }, (_, i) => `"k${i}":"v${i}"`).join(',');
  t.equal(parseProblem(`{${plain},"d\\u0041":1,"dA":2}`), 'BODY_DUPLICATE_KEY', 'an escaped key after many plain strings');
  t.equal(parseProblem(`{"x":"a\\"b",${plain},"k1":3}`), 'BODY_DUPLICATE_KEY', 'a plain repeat after an escaped value');
  t.equal(parseProblem(`{${plain},"s":"\\ud800"}`), 'BODY_NOT_UTF8', 'a lone surrogate escape at the end');
  t.equal(parseProblem(`{"e":"\\\\",${plain},"f":"\\n"}`), undefined, 'escapes that hide nothing');
});
