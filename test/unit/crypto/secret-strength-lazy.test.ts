// zxcvbn's packages (about 30 MiB of word lists once loaded) are loaded by the first strength
// check, not by importing the modules that may check: a guard that judges no secret (mTLS only)
// never holds them (issue 22 part 3). Its own file: tap runs each file in a fresh process.
import { createRequire } from 'node:module';
import t from 'tap';
import '../../../src/config/validate.ts';
import '../../../src/auth/bearer.ts';
import '../../../src/replay/keys.ts';
import { GEN_TOKEN_HINT, secretWeakness, strengthPackagesLoaded } from '../../../src/crypto/secret-strength.ts';

const loadedFiles = () => Object.keys(createRequire(import.meta.url).cache).filter((f) => f.includes('@zxcvbn-ts'));

t.test('importing the modules that judge secrets loads no zxcvbn package', async (t) => {
  t.equal(strengthPackagesLoaded(), false);
  t.same(loadedFiles(), []);
});

t.test('the first check loads them, and judges as before', async (t) => {
  t.equal(secretWeakness('Xq3v9LmT0pR7sW2yB6nF4hJ8kD1cG5aZeUoIiYtQwEr'), undefined);
  t.equal(strengthPackagesLoaded(), true);
  t.ok(loadedFiles().some((f) => f.includes('language-en')), 'the English word list is loaded now');
  t.match(secretWeakness('CorrectHorseBatteryStapleIsMyPassword'), /dictionary words/);
  t.match(secretWeakness('CorrectHorseBatteryStapleIsMyPassword'), GEN_TOKEN_HINT);
});
