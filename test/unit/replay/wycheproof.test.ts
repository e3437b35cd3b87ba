// Project Wycheproof vectors against the verification of v1 (HMAC-SHA256) and v1a (Ed25519), on
// each path: the primitives, and findVerifyingKey on the event loop (node:crypto) and off the
// main thread (WebCrypto). The same runs under Deno in test/deno/signature_offthread_test.ts.
import t from 'tap';
import { runEd25519Vectors, runHmacVectors } from '../../helpers/wycheproof.ts';

t.test('hmac_sha256_test.json', async (t) => {
  const run = await runHmacVectors();
  t.equal(run.total, run.numberOfTests, 'every vector ran');
  t.same(run.failures, []);
  t.equal(run.accepted + run.refused, run.total, 'every vector had the wanted outcome on every path');
  t.ok(run.accepted > 0 && run.truncatedRefused > 0, 'valid full tags accepted, truncated tags refused');
  t.comment(`HMAC-SHA256: ${run.total} vectors x 3 paths: ${run.accepted} valid accepted, ${run.refused - run.truncatedRefused} invalid full tags and ${run.truncatedRefused} truncated tags refused`);
});

t.test('ed25519_test.json', async (t) => {
  const run = await runEd25519Vectors();
  t.equal(run.total, run.numberOfTests, 'every vector ran');
  t.same(run.failures, []);
  t.equal(run.accepted + run.refused, run.total, 'every vector had the wanted outcome, for every key form and path');
  t.ok(run.accepted > 0 && run.refused > 0);
  t.comment(`Ed25519: ${run.total} vectors x 3 key forms x 3 paths: ${run.accepted} valid accepted, ${run.refused} invalid refused`);
});
