// compose() refuses at start-up a stage order in which a stage would run before what it needs,
// and need() turns a fact missing at run time into the one non-banning code.
import t from 'tap';
import { newConnection, newRequestContext } from '../../../src/pipeline/context.ts';
import type { Rejection } from '../../../src/pipeline/reasons.ts';
import { compose, need, PipelineOrderError, type Stage } from '../../../src/pipeline/stage.ts';

const sets = (name: string, provides: Stage['provides']): Stage => ({ name, provides, run: () => undefined });
const reads = (name: string, needs: Stage['needs']): Stage => ({ name, needs, run: () => undefined });

const context = () => newRequestContext({
  id: 't', req: {} as never, res: {} as never, conn: newConnection({ remoteAddress: '127.0.0.1', remotePort: 1 }), startedAt: 0,
});

t.test('a stage that needs what no earlier stage provides is refused when the pipeline is built', async (t) => {
  t.throws(() => compose([reads('pop-rate', ['pop']), sets('mtls', ['pop'])]), PipelineOrderError, 'the provider comes after');
  t.throws(() => compose([sets('route', ['path']), reads('forward', ['path', 'body'])]), { message: /stage "forward" needs "body", which no stage before it provides \(before it: route\)/ });
  t.doesNotThrow(() => compose([sets('route', ['path']), sets('body', ['body']), reads('forward', ['path', 'body'])]));
  t.doesNotThrow(() => compose([reads('contract', ['pop', 'body'])], ['pop', 'body']), 'what the caller sets counts');
});

t.test('the composed pipeline runs every stage in order, awaiting only those that wait', async (t) => {
  const seen: string[] = [];
  const run = compose([
    { name: 'a', run: () => void seen.push('a') },
    { name: 'b', run: async () => void seen.push('b') },
    { name: 'c', run: () => void seen.push('c') },
  ]);
  await run(context());
  t.same(seen, ['a', 'b', 'c']);
});

t.test('need() returns a fact an earlier stage set, and refuses with a non-banning code when it is missing', async (t) => {
  const ctx = context();
  ctx.pop = 'calgary-01';
  t.equal(need(ctx, 'pop', 'test'), 'calgary-01');
  const err = t.throws(() => need(ctx, 'body', 'test')) as Rejection;
  t.equal(err.reason, 'INTERNAL_PREREQUISITE_MISSING');
  t.equal(err.status, 500);
});
