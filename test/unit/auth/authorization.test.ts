// The Authorization stage reads the header once and hands the credential, by its shape, to the
// verifier that judges it; with one verifier configured it gets every shape.
import type { IncomingMessage } from 'node:http';
import t from 'tap';
import { createAuthorizationStage, type CredentialVerifier } from '../../../src/auth/authorization.ts';
import { newConnection, newRequestContext } from '../../../src/pipeline/context.ts';
import { Rejection } from '../../../src/pipeline/reasons.ts';

const JWT = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJjYWxnYXJ5LTAxIn0.c2ln';
const SECRET = 'Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5';

function verifier(name: 'bearer' | 'jwt', seen: string[]): CredentialVerifier {
  return { name, needs: name === 'jwt' ? ['path'] : [], verify: (credential) => void seen.push(`${name}:${credential}`), reload: () => [], close: () => undefined };
}

async function reason(stage: ReturnType<typeof createAuthorizationStage>, rawHeaders: string[]): Promise<string> {
  const ctx = newRequestContext({ id: 't', req: { rawHeaders } as unknown as IncomingMessage, res: {} as never, conn: newConnection({ remoteAddress: '127.0.0.1', remotePort: 1 }), startedAt: 0 });
  try {
    await stage.run(ctx);
    return 'ok';
  } catch (err) {
    if (err instanceof Rejection) return err.reason;
    throw err;
  }
}

t.test('by shape: a JWT to jwt, anything else to bearer', async (t) => {
  const seen: string[] = [];
  const stage = createAuthorizationStage({ bearer: verifier('bearer', seen), jwt: verifier('jwt', seen) });
  await reason(stage, ['Authorization', `Bearer ${JWT}`]);
  await reason(stage, ['Authorization', `Bearer ${SECRET}`]);
  t.same(seen, [`jwt:${JWT}`, `bearer:${SECRET}`]);
  t.same(stage.needs, ['path'], 'what the verifiers need');
  t.same(stage.provides, ['pop']);
});

t.test('one verifier configured: it judges every shape', async (t) => {
  const bearerSeen: string[] = [];
  const onlyBearer = createAuthorizationStage({ bearer: verifier('bearer', bearerSeen) });
  await reason(onlyBearer, ['Authorization', `Bearer ${JWT}`]);
  t.same(bearerSeen, [`bearer:${JWT}`]);
  t.same(onlyBearer.needs, []);
  const jwtSeen: string[] = [];
  await reason(createAuthorizationStage({ jwt: verifier('jwt', jwtSeen) }), ['Authorization', `Bearer ${SECRET}`]);
  t.same(jwtSeen, [`jwt:${SECRET}`]);
  t.throws(() => createAuthorizationStage({}), 'neither: a wiring error');
});

t.test('the header is read once, before any verifier: missing, repeated or another scheme', async (t) => {
  const seen: string[] = [];
  const stage = createAuthorizationStage({ bearer: verifier('bearer', seen), jwt: verifier('jwt', seen) });
  t.equal(await reason(stage, []), 'AUTH_CREDENTIAL_MISSING');
  t.equal(await reason(stage, ['Authorization', `Bearer ${SECRET}`, 'authorization', `Bearer ${JWT}`]), 'AUTH_CREDENTIAL_MALFORMED');
  t.equal(await reason(stage, ['Authorization', `Basic ${SECRET}`]), 'AUTH_CREDENTIAL_MALFORMED');
  t.same(seen, [], 'no verifier saw any of them');
});
