// The two ban checks of a pipeline (steps 2 and 5) ask the store about each key once per
// request: counted on the real memory store, whose reads are wrapped to count them.
import type { IncomingMessage, ServerResponse } from 'node:http';
import t from 'tap';
import { createPeerIndex } from '../../../src/auth/mtls.ts';
import { configSchema } from '../../../src/config/schema.ts';
import { createBanStages } from '../../../src/limits/ban-stages.ts';
import { Bans } from '../../../src/limits/bans.ts';
import { createOperationalLog } from '../../../src/log/operational.ts';
import { newConnection, newRequestContext, type RequestContext } from '../../../src/pipeline/context.ts';
import { Rejection } from '../../../src/pipeline/reasons.ts';
import type { BanStore } from '../../../src/store/ban-store.ts';
import { createSharedState } from '../../../src/store/create.ts';

const limits = configSchema.shape.limits.parse({ ban_after_failures: 3 });
const peers = [{ id: 'calgary-01', cert: { cn: 'calgary-01' }, cert_sha256: [] }];
const log = createOperationalLog('error');
const state = createSharedState({ limits, store: configSchema.shape.store.parse({}) }, { now: Date.now, log });
const asked: string[][] = [];
const store = state.bans;
const counting: BanStore = {
  add: (record) => store.add(record),
  get: (keys) => store.get(keys),
  getNow: (keys) => {
    asked.push([...keys]);
    return store.getNow!(keys);
  },
  list: (limit) => store.list(limit),
  remove: (key) => store.remove(key),
  expired: (now, limit) => store.expired(now, limit),
};
const index = createPeerIndex(peers);
const bans = new Bans({ limits, peers }, { ...state, bans: counting }, { now: Date.now, log, audit: { write: () => undefined, flush: () => undefined }, peers: () => index });
t.teardown(() => bans.stop());

const request = (withCertificate: boolean): RequestContext => newRequestContext({
  id: 'r', req: {} as IncomingMessage, res: {} as ServerResponse, startedAt: 0,
  conn: newConnection({
    remoteAddress: '192.0.2.7', remotePort: 1, tlsVersion: 'TLSv1.3',
    peer: withCertificate ? { subject: 'CN=calgary-01', commonNames: ['calgary-01'], dnsSans: [], uriSans: [], sha256: '00'.repeat(32), notAfterMs: Date.now() + 1e9 } : undefined,
    verifiedTrust: withCertificate ? 'the trust in force' : undefined,
  }),
});

async function run(ctx: RequestContext, stages: ReturnType<typeof createBanStages>, popByToken?: string): Promise<void> {
  await stages.early.run(ctx);
  if (popByToken) ctx.pop = popByToken;
  await stages.afterAuthentication.run(ctx);
}

t.test('a POP named by its verified certificate: one store read per request', async (t) => {
  const stages = createBanStages(bans);
  asked.length = 0;
  const ctx = request(true);
  ctx.pop = 'calgary-01'; // set by the TLS gate's identity for a verified certificate in the real pipeline
  await run(ctx, stages);
  t.same(asked, [['pop:calgary-01']], 'step 5 asks nothing step 2 asked');
});

t.test('a POP named only by its token: the address at step 2, the POP at step 5, each once', async (t) => {
  const stages = createBanStages(bans);
  asked.length = 0;
  await run(request(false), stages, 'calgary-01');
  t.equal(asked.length, 2);
  t.same(asked[0], ['addr:192.0.2.7']);
  t.notOk(asked[1]!.includes('addr:192.0.2.7'), 'the address is not asked again');
  t.ok(asked[1]!.includes('pop:calgary-01'));
});

t.test('a ban is still enforced at the step that knows the key', async (t) => {
  const stages = createBanStages(bans);
  await store.add({ key: 'pop:calgary-01', since: Date.now(), until: Date.now() + 60_000, reason: 'AUTH_BEARER_INVALID', failures: 3 });
  const refused = await run(request(false), stages, 'calgary-01').then(() => undefined, (e: unknown) => e);
  t.ok(refused instanceof Rejection && refused.reason === 'LIMIT_BANNED', 'the POP ban refuses the request at step 5');
});
