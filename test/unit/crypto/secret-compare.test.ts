// The one comparison helper: digests compared with timingSafeEqual, and no other path.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import t from 'tap';
import { credentialFingerprint, digestSecret, findSecret, secretsEqual } from '../../../src/crypto/secret-compare.ts';

const SRC = join(import.meta.dirname, '..', '..', '..', 'src');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

t.test('equality whatever the lengths', async (t) => {
  t.ok(secretsEqual('s3cret-value', 's3cret-value'));
  t.notOk(secretsEqual('s3cret-value', 's3cret-valuf'));
  t.notOk(secretsEqual('short', 'a much longer secret than the other one'), 'different lengths: false, no throw');
  t.notOk(secretsEqual('', 'x'));
  const candidates = [{ digest: digestSecret('one'), id: 1 }, { digest: digestSecret('two'), id: 2 }, { digest: digestSecret('two'), id: 3 }];
  t.equal(findSecret('two', candidates)?.id, 2, 'the first match');
  t.equal(findSecret('three', candidates), undefined);
  t.equal(findSecret('one', []), undefined);
  t.match(credentialFingerprint('x'), /^[0-9a-f]{12}$/);
});

t.test('secret-compare.ts is the only comparison path', async (t) => {
  const files = sources(SRC);
  const timingSafe = files.filter((f) => /timingSafeEqual/.test(readFileSync(f, 'utf8'))).map((f) => relative(SRC, f));
  t.same(timingSafe, ['crypto/secret-compare.ts'], 'timingSafeEqual is used in one module only');
  // Modules that hold secrets compare them through the helper, never with ===, equals or compare.
  t.match(readFileSync(join(SRC, 'replay/signature.ts'), 'utf8'), /macsEqual\(expected, mac\)/, 'replay/signature.ts compares HMACs with macsEqual');
  for (const file of ['auth/bearer.ts']) {
    const text = readFileSync(join(SRC, file), 'utf8');
    t.match(text, /findSecret\(credential, /, `${file} matches presented secrets with findSecret`);
    const suspicious = text.split('\n').filter((line) => /(secret|credential|token|digest)\w*\s*(===|!==|==)|\.equals\(|Buffer\.compare|\.indexOf\(credential|\.includes\(credential/i.test(line)
      && !/^\s*(\/\/|\*)/.test(line) && !/[!=]== undefined/.test(line));
    t.same(suspicious, [], `${file} has no direct comparison of secrets`);
  }
});
