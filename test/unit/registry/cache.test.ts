// registry/cache.ts: written in one step with mode 0600, read back as it was; anything that is not
// a cache of this format, or a cache others could have changed, is refused with a code.
import { chmodSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { readRegistryCache, writeRegistryCache } from '../../../src/registry/cache.ts';
import { RegistryError } from '../../../src/registry/verify.ts';
import { atomicWrite } from '../../helpers/reload.ts';

const dir = mkdtempSync(join(tmpdir(), 'replguard-cache-'));
const refusal = (file: string) => {
  try {
    readRegistryCache(file);
    return 'read';
  } catch (err) {
    return err instanceof RegistryError ? err.code : String(err);
  }
};

t.test('written and read back; no temporary file left', async (t) => {
  const file = join(dir, 'r.cache');
  t.equal(readRegistryCache(file), undefined, 'none yet');
  writeRegistryCache(file, { jws: 'a.b.c', etag: '"v1"' });
  t.same(readRegistryCache(file), { jws: 'a.b.c', etag: '"v1"' });
  t.equal(statSync(file).mode & 0o777, 0o600);
  writeRegistryCache(file, { jws: 'd.e.f' });
  t.same(readRegistryCache(file), { jws: 'd.e.f' }, 'replaced; no ETag for a file source');
  t.same(readdirSync(dir), ['r.cache']);
});

t.test('refused: not JSON, another format, unknown members, writable by others', async (t) => {
  t.equal(refusal(atomicWrite(join(dir, 'a'), 'a.b.c', 0o600)), 'REGISTRY_MALFORMED');
  t.equal(refusal(atomicWrite(join(dir, 'b'), JSON.stringify({ replguard_registry_cache: 2, registry: 'a.b.c' }), 0o600)), 'REGISTRY_MALFORMED');
  t.equal(refusal(atomicWrite(join(dir, 'c'), JSON.stringify({ replguard_registry_cache: 1, registry: 'a.b.c', serial: 99 }), 0o600)), 'REGISTRY_MALFORMED');
  const open = atomicWrite(join(dir, 'd'), JSON.stringify({ replguard_registry_cache: 1, registry: 'a.b.c' }), 0o600);
  chmodSync(open, 0o666);
  t.equal(refusal(open), 'REGISTRY_UNREADABLE');
});
