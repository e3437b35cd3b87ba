// The body contract provides "contract" whenever the body met it, also for a body without
// `entries` (which leaves ctx.entries undefined): a later stage that needs it, like forward,
// must let such a request on, not end it as INTERNAL_PREREQUISITE_MISSING.
import type { IncomingMessage } from 'node:http';
import t from 'tap';
import { newConnection, newRequestContext } from '../../../src/pipeline/context.ts';
import { compose, need } from '../../../src/pipeline/stage.ts';
import { createBodyContractStage } from '../../../src/replay/body-contract.ts';

const contract = createBodyContractStage({ limits: { max_json_depth: 32, max_json_keys_per_object: 1000, max_json_values: 200_000 }, auth: { methods: ['mtls'] } });

async function reachesForward(body: object): Promise<{ reached: boolean; entries: number | undefined }> {
  let reached = false;
  const run = compose([contract, { name: 'forward', needs: ['contract'], run: (ctx) => {
    reached = need(ctx, 'contract', 'forward');
  } }], ['pop', 'body']);
  const ctx = newRequestContext({
    id: 't', req: { headers: { 'content-type': 'application/json' }, rawHeaders: ['Content-Type', 'application/json'] } as unknown as IncomingMessage,
    res: {} as never, conn: newConnection({ remoteAddress: '127.0.0.1', remotePort: 1 }), startedAt: 0, pop: 'calgary-01',
  });
  ctx.body = Buffer.from(JSON.stringify(body));
  await run(ctx);
  return { reached, entries: ctx.entries };
}

t.test('a body that meets the contract reaches the next stage, with or without entries', async (t) => {
  t.same(await reachesForward({ source_pop: 'calgary-01', entries: [{ id: 1 }, { id: 2 }] }), { reached: true, entries: 2 });
  t.same(await reachesForward({ source_pop: 'calgary-01' }), { reached: true, entries: undefined });
});
