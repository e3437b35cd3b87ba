// The signer's body preparation: only source_pop (inserted), timestamp and nonce (rewritten) may
// change; everything else is byte for byte the primary's. Every prepared body is then judged by
// the guard's own body contract with the attempt's id and time.
import t from 'tap';
import { Rejection } from '../../../src/pipeline/reasons.ts';
import { checkReplicationBody, parseReplicationBody } from '../../../src/replay/body-contract.ts';
import { topLevelMembers } from '../../../src/replay/body-contract.ts';
import { prepareBody } from '../../../src/signer/body.ts';
import { configSchema } from '../../../src/config/schema.ts';
import { jsonBounds } from '../../../src/replay/body-contract.ts';

// The documented defaults (limits.max_json_*).
const BOUNDS = jsonBounds(configSchema.shape.limits.parse({}));

const ID = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
const TS = 1763800000;

function render(text: string): string {
  const prepared = prepareBody(Buffer.from(text), 'calgary-01', BOUNDS);
  const out = prepared.render(ID, TS);
  // What the guard will check, with the facts of this attempt.
  checkReplicationBody(parseReplicationBody(out, BOUNDS), { pop: 'calgary-01', timestampSeconds: TS, webhookId: ID });
  return out.toString();
}

t.test('kept, inserted and rewritten', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['source_pop present: unchanged', '{"source_pop":"calgary-01","entries":[1]}', '{"source_pop":"calgary-01","entries":[1]}'],
    ['empty object', '{}', '{"source_pop":"calgary-01"}'],
    ['empty object with blanks', ' { \n } ', ' {"source_pop":"calgary-01" \n } '],
    ['members: inserted first', '{"entries":[]}', '{"source_pop":"calgary-01","entries":[]}'],
    ['timestamp rewritten in place', '{"source_pop":"calgary-01","timestamp": 17 ,"entries":[]}', `{"source_pop":"calgary-01","timestamp": ${TS} ,"entries":[]}`],
    ['nonce rewritten, last member', '{"entries":[],"nonce":"primary-nonce"}', `{"source_pop":"calgary-01","entries":[],"nonce":"${ID}"}`],
    ['folded names, as the guard reads them', '{"Timestamp":1.5e3,"NONCE":null}', `{"source_pop":"calgary-01","Timestamp":${TS},"NONCE":"${ID}"}`],
    ['nested timestamp and nonce are data, untouched', '{"entries":[{"timestamp":5,"nonce":"x"}]}', '{"source_pop":"calgary-01","entries":[{"timestamp":5,"nonce":"x"}]}'],
    ['strings with braces, commas, colons and escaped quotes', '{"entries":["}\\",{:","a,b"],"timestamp":{"a":[1,{"b":2}]}}', `{"source_pop":"calgary-01","entries":["}\\",{:","a,b"],"timestamp":${TS}}`],
    ['numbers JSON.parse would round, escapes it would undo', '{"entries":[{"id":12345678901234567890,"w":1.50,"s":"\\u00e9"}]}', '{"source_pop":"calgary-01","entries":[{"id":12345678901234567890,"w":1.50,"s":"\\u00e9"}]}'],
    ['UTF-8 text', '{"entries":[{"name":"Zürich – 東京"}]}', '{"source_pop":"calgary-01","entries":[{"name":"Zürich – 東京"}]}'],
  ];
  for (const [name, input, expected] of cases) t.equal(render(input), expected, name);
});

t.test('entries counted; absent stays absent', async (t) => {
  t.equal(prepareBody(Buffer.from('{"entries":[1,2,3]}'), 'calgary-01', BOUNDS).entries, 3);
  t.equal(prepareBody(Buffer.from('{}'), 'calgary-01', BOUNDS).entries, undefined);
  t.equal(prepareBody(Buffer.from('{}'), 'calgary-01', BOUNDS).sourcePopInserted, true);
  t.equal(prepareBody(Buffer.from('{"source_pop":"calgary-01"}'), 'calgary-01', BOUNDS).sourcePopInserted, false);
});

t.test('refused with the guard\'s reason codes', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['another POP', '{"source_pop":"denver-02"}', 'BODY_SOURCE_POP_MISMATCH'],
    ['another POP, folded name', '{"Source_Pop":"denver-02"}', 'BODY_SOURCE_POP_MISMATCH'],
    ['source_pop not a string', '{"source_pop":7}', 'BODY_SOURCE_POP_MISSING'],
    ['entries not an array', '{"entries":{}}', 'BODY_ENTRIES_INVALID'],
    ['not JSON', '{"entries":', 'BODY_NOT_JSON'],
    ['not an object', '"calgary-01"', 'BODY_NOT_OBJECT'],
    ['a repeated key', '{"nonce":"a","Nonce":"b"}', 'BODY_DUPLICATE_KEY'],
    ['invalid UTF-8', '{"entries":["\xff"]}', 'BODY_NOT_UTF8'],
    ['nested past limits.max_json_depth', `{"entries":${'['.repeat(40)}${']'.repeat(40)}}`, 'BODY_JSON_TOO_DEEP'],
    ['more keys than limits.max_json_keys_per_object', `{${Array.from({ length: 1001 }, (_, i) => `"k${i}":0`).join(',')}}`, 'BODY_JSON_TOO_MANY_KEYS'],
    ['more values than limits.max_json_values', `{"entries":[${Array(200_000).fill('0').join(',')}]}`, 'BODY_JSON_TOO_MANY_VALUES'],
  ];
  for (const [name, input, reason] of cases) {
    const raw = name === 'invalid UTF-8' ? Buffer.from(input, 'latin1') : Buffer.from(input);
    let got: string | undefined;
    try {
      prepareBody(raw, 'calgary-01', BOUNDS);
    } catch (err) {
      if (err instanceof Rejection) got = err.reason;
    }
    t.equal(got, reason, name);
  }
});

t.test('top-level members: folded names and exact value spans', async (t) => {
  const text = '{ "a" : [1,{"b":2}] , "B":"x}" ,"c":{} }';
  t.same(topLevelMembers(text).map((m) => [m.key, text.slice(m.start, m.end)]), [['a', '[1,{"b":2}]'], ['b', '"x}"'], ['c', '{}']]);
});
