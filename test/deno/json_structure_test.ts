// Conformance for Deno 2 (node:test + node:assert: tap does not run under Deno): the JSON
// structure bounds and the sliced scans of a large body (src/replay/json-structure.ts,
// src/replay/body-contract.ts), with the default pause (setImmediate from node:timers), so that
// the event loop really turns between slices on Deno as on Node.
// Run: npm run test:deno (deno test discovers *_test.ts; tap ignores them)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate } from 'node:timers';
import { Rejection } from '../../src/pipeline/reasons.ts';
import { parseReplicationBodyInSlices, type SlicedParseStats } from '../../src/replay/body-contract.ts';
import { JSON_SCAN_SLICE_BYTES, scanJsonStructure } from '../../src/replay/json-structure.ts';

const BOUNDS = { maxDepth: 32, maxKeysPerObject: 1000, maxValues: 200_000 };
const HEAD = '{"source_pop":"calgary-01","entries":';
const honest = Buffer.from(`${HEAD}[${Array(8000).fill('{"id":1,"op":"upsert","v":"\\u00e9l\\u00e8ve"}').join(',')}]}`);

test('a large body: ceil(n / slice) slices, and other callbacks run between them', async () => {
  let done = false;
  const scan = scanJsonStructure(honest, BOUNDS).then((r) => {
    done = true;
    return r;
  });
  // Queued after the scan's first pause: it runs while the scan still has slices to go.
  let ranDuringScan = false;
  setImmediate(() => (ranDuringScan = !done));
  const r = await scan;
  assert.equal(r.problem, undefined);
  assert.equal(r.bytesScanned, honest.length);
  assert.equal(r.slices, Math.ceil(honest.length / JSON_SCAN_SLICE_BYTES));
  assert.ok(r.slices >= 3);
  assert.ok(ranDuringScan, 'another callback ran between two slices');
});

test('the sliced parse passes an honest batch and refuses the pathological ones with their codes', async () => {
  const stats: SlicedParseStats = { slices: 0, recountSlices: 0 };
  const body = await parseReplicationBodyInSlices(honest, BOUNDS, {}, stats);
  assert.deepEqual(body.entries, { kind: 'array', length: 8000 });
  assert.deepEqual(stats, { slices: Math.ceil(honest.length / JSON_SCAN_SLICE_BYTES), recountSlices: 0 });
  const cases: Array<[string, string]> = [
    [`${HEAD}${'['.repeat(400_000)}${']'.repeat(400_000)}}`, 'BODY_JSON_TOO_DEEP'],
    [`{${Array.from({ length: 40_000 }, (_, i) => `"k${i}":0`).join(',')}}`, 'BODY_JSON_TOO_MANY_KEYS'],
    [`${HEAD}[${Array(340_000).fill('{}').join(',')}]}`, 'BODY_JSON_TOO_MANY_VALUES'],
  ];
  for (const [text, reason] of cases) {
    await assert.rejects(parseReplicationBodyInSlices(Buffer.from(text), BOUNDS), (err: unknown) => err instanceof Rejection && err.reason === reason, reason);
  }
});
