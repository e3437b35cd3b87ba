// The strength rules for shared secrets, and that gen-token's output passes them.
import t from 'tap';
import { secretWeakness } from '../../../src/auth/secret-strength.ts';
import { generateToken } from '../../../src/cli/gen-token.ts';

const weak = (s: string) => secretWeakness(Buffer.from(s));

t.test('refused, with the reason', async (t) => {
  t.match(weak('short-but-random-Xy7Qp2'), /bytes long/, 'shorter than 32 bytes');
  t.match(weak('a'.repeat(40)), /one repeated byte/);
  t.match(weak('abcXYZ12'.repeat(6)), /repeats a 8-byte pattern/);
  t.match(weak('ab'.repeat(20)), /repeats a 2-byte pattern/);
  t.match(weak('0100110001110000111100000111110000001111'), /distinct symbols/);
  t.match(weak('abcdefghijklmnopqrstuvwxyzABCDEFGHIJ'), /regular sequence/);
  t.match(weak('correcthorsebatterystaplecorrecthorse'), /looks like words/);
  t.match(weak('CorrectHorseBatteryStapleForReplication'), /looks like words/);
  t.match(weak('password-password-replication-2024!'), /looks like words/);
});

t.test('the words rule answers at once on a long lower-case run ending in capitals', async (t) => {
  // With a backtracking words pattern this never returned (2^n ways to split the run).
  const letters = 'qwmnbvcxzlkjhgfdsapoiuytre';
  let run = '';
  for (let i = 0; i < 200; i++) run += letters[(i * 7 + (i >> 3)) % letters.length];
  t.equal(weak(`${run}AB`), undefined, 'not words: the capitals start none');
  t.match(weak(`${run}Abc`), /looks like words/);
});

t.test('accepted: random secrets in the usual encodings', async (t) => {
  const { randomBytes } = await import('node:crypto');
  t.equal(weak(randomBytes(32).toString('hex')), undefined, 'hex');
  t.equal(weak(randomBytes(32).toString('base64')), undefined, 'base64');
  t.equal(weak(randomBytes(24).toString('base64url')), undefined, 'base64url of 24 bytes (32 characters)');
  // gen-token redraws a refused draw, so count refusals of raw draws: they must be (near) absent.
  let refused = 0;
  for (let i = 0; i < 20_000; i++) if (weak(randomBytes(32).toString('base64url')) !== undefined) refused += 1;
  t.ok(refused <= 1, `raw 32-byte base64url draws refused: ${refused} of 20000`);
  t.equal(weak(generateToken()), undefined, 'gen-token output');
  t.equal(generateToken().length, 43, '32 bytes as base64url');
});
