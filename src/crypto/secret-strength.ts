/**
 * How strong a shared secret is: bearer secrets (`peers[].token_files`, `admin.token_file`, the
 * signer's `credentials.token_file`), HMAC signature secrets (`whsec_`, replay/keys.ts) and the
 * Redis password (`store.password_file`). A secret is refused, at start-up and at every reload,
 * when a conservative estimate of the guesses an attacker needs is below 2^128
 * (`MIN_SECRET_BITS`), or when it is shorter than 32 bytes (`MIN_SECRET_BYTES`).
 *
 * The estimate is the smaller of two:
 *  - zxcvbn (`@zxcvbn-ts/core` with the common and English dictionaries): log2 of its guesses.
 *    It finds dictionary words (also l33t, reversed, capitalised), common passwords, names,
 *    keyboard walks, repeats (`aaaa`, `abcabc`), sequences (`abcd`, `1357`), dates and years,
 *    and counts each character it cannot explain as one of 10 (its deliberately low brute-force
 *    cardinality). So a secret needs at least 39 characters that match no pattern, whatever its
 *    alphabet: 32 random hex characters (128 random bits) are credited about 100 bits and refused,
 *    because no estimate can see that they were drawn at random rather than typed.
 *  - length x log2(distinct symbols used): a secret written with few symbols is a pattern or a
 *    small alphabet (`0100110...` is 1 bit a character, whatever zxcvbn finds in it).
 * A passphrase can pass: ten words drawn at random from a large list hold about 128 bits, and
 * zxcvbn credits them about that; `CorrectHorseBatteryStapleIsMyPassword` gets about 69.
 *
 * Cost (measured on Node 20): importing the dictionaries about 0.15 s, building zxcvbn's ranked
 * dictionaries about 0.2 s, once per process on the first check; each check then about 20 ms on
 * a gen-token secret, with `l33tMaxSubstitutions` at 5 (zxcvbn's default, 100, takes about
 * 250 ms on random base64url because every digit is a possible l33t letter; 5 still finds
 * `P4ssw0rd`). Deno loads the same packages from node_modules.
 * zxcvbn's cost grows with the length, so it sees only the first `JUDGED_PREFIX_CHARS` (100)
 * characters, and so does the second estimate: a longer secret is judged on its prefix (a
 * weak prefix refuses it, a strong one is enough). Verdicts are kept by SHA-256 of the secret
 * so that a reload every few seconds does not redo the work for unchanged files.
 *
 * `replguard gen-token` output (32 random bytes, base64url, 43 characters: at most about 143
 * bits by zxcvbn's count) passes; gen-token redraws in the rare case a draw is refused (see the
 * unit test's sample).
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { clearTimeout, setTimeout } from 'node:timers';
import type { MatchExtended, ZxcvbnFactory } from '@zxcvbn-ts/core';

/** Shortest acceptable secret, in bytes (of the file's content, after the trailing newline). */
export const MIN_SECRET_BYTES = 32;

/** Least estimated strength, in bits (log2 of the guesses needed). */
export const MIN_SECRET_BITS = 128;

/** Characters of a secret that are judged; the rest is neither credited nor held against it. */
export const JUDGED_PREFIX_CHARS = 100;

/** How to make a secret that passes, for the messages. */
export const GEN_TOKEN_HINT = '`replguard gen-token --out FILE` makes one';

const L33T_MAX_SUBSTITUTIONS = 5;

/** Verdicts kept (by SHA-256 of the secret); the cache is emptied when full. */
const CACHE_ENTRIES = 4096;

export interface SecretStrength {
  /** The conservative estimate, in bits, rounded down. */
  readonly bits: number;
  /** False when the secret is longer than `JUDGED_PREFIX_CHARS` and only its prefix was judged. */
  readonly judgedAll: boolean;
  /** What lowered the estimate, in words fit for an operator (never a part of the secret). */
  readonly findings: readonly string[];
}

/**
 * How long zxcvbn's ranked dictionaries stay built after the last check, in milliseconds. They
 * are about 22 MiB resident (Node 20) and are needed only at start-up and when a secret file
 * changes, so a serving process drops them and builds them again (about 0.2 s) for the next
 * new secret; the checks of one start-up or one reload run within this time of each other.
 */
export const STRENGTH_DICTIONARIES_IDLE_MS = 2000;

/**
 * zxcvbn's packages, loaded on the first check (synchronously: the checks are). Their word lists
 * are about 30 MiB resident once loaded and a module cannot be unloaded, so a process that never
 * judges a secret (a guard authenticating by certificate only) never loads them. All three
 * packages are CommonJS (`main`): `require` loads the same files an `import` would.
 */
interface ZxcvbnPackages {
  readonly core: typeof import('@zxcvbn-ts/core');
  readonly common: typeof import('@zxcvbn-ts/language-common');
  readonly en: typeof import('@zxcvbn-ts/language-en');
}
let packages: ZxcvbnPackages | undefined;
function zxcvbnPackages(): ZxcvbnPackages {
  if (!packages) {
    const require = createRequire(import.meta.url);
    packages = { core: require('@zxcvbn-ts/core'), common: require('@zxcvbn-ts/language-common'), en: require('@zxcvbn-ts/language-en') };
  }
  return packages;
}

/** Whether zxcvbn's packages (and their word lists) are loaded in this process (tests, the bench). */
export function strengthPackagesLoaded(): boolean {
  return packages !== undefined;
}

let factory: ZxcvbnFactory | undefined;
let releaseTimer: ReturnType<typeof setTimeout> | undefined;
function zxcvbn(): ZxcvbnFactory {
  const { core, common, en } = zxcvbnPackages();
  factory ??= new core.ZxcvbnFactory({
    dictionary: { ...common.dictionary, ...en.dictionary },
    graphs: common.adjacencyGraphs,
    translations: en.translations,
    maxLength: JUDGED_PREFIX_CHARS,
    l33tMaxSubstitutions: L33T_MAX_SUBSTITUTIONS,
  });
  if (releaseTimer) releaseTimer.refresh();
  else {
    // unref: a pending release never keeps a finished command (check-config, gen-token) alive.
    releaseTimer = setTimeout(releaseStrengthDictionaries, STRENGTH_DICTIONARIES_IDLE_MS).unref();
  }
  return factory;
}

/**
 * Drops zxcvbn's ranked dictionaries, so that the garbage collector frees them; the next check
 * builds them again. (The word lists of the imported language packages stay: a module cannot be
 * unloaded.)
 */
export function releaseStrengthDictionaries(): void {
  factory = undefined;
  if (releaseTimer) clearTimeout(releaseTimer);
  releaseTimer = undefined;
}

/** Whether the ranked dictionaries are built now (tests, the bench). */
export function strengthDictionariesBuilt(): boolean {
  return factory !== undefined;
}

const cache = new Map<string, SecretStrength>();

/** The conservative strength estimate of `secret` (see the module comment). */
export function estimateSecretStrength(secret: string): SecretStrength {
  const key = createHash('sha256').update(secret).digest('hex');
  const known = cache.get(key);
  if (known) return known;
  const strength = estimate(secret);
  if (cache.size >= CACHE_ENTRIES) cache.clear();
  cache.set(key, strength);
  return strength;
}

function estimate(secret: string): SecretStrength {
  const direct = estimateText(secret);
  // An encoding hides nothing: the base64 or hex of a weak text is as weak as the text (and
  // would otherwise be credited as random characters). Random bytes do not decode to text, so
  // generated secrets are unaffected.
  let weakest = direct;
  for (const { encoding, text } of decodedTexts(secret)) {
    const inner = estimateText(text);
    if (inner.bits < weakest.bits) weakest = { ...inner, judgedAll: direct.judgedAll, findings: [`it is the ${encoding} encoding of a text`, ...inner.findings] };
  }
  return weakest;
}

/** Most bytes that are not printable ASCII for a decoding to count as text (1 in 20). */
const TEXT_NON_PRINTABLE_SHARE = 0.05;

/** The texts `secret` decodes to, as hex, base64 or base64url, when it is such an encoding of text. */
function decodedTexts(secret: string): Array<{ encoding: string; text: string }> {
  const candidates: Array<{ encoding: string; bytes: Buffer }> = [];
  if (/^(?:[0-9a-fA-F]{2}){8,}$/.test(secret)) candidates.push({ encoding: 'hex', bytes: Buffer.from(secret, 'hex') });
  if (/^[A-Za-z0-9+/]{12,}={0,2}$/.test(secret)) candidates.push({ encoding: 'base64', bytes: Buffer.from(secret, 'base64') });
  if (/^[A-Za-z0-9_-]{12,}$/.test(secret)) candidates.push({ encoding: 'base64url', bytes: Buffer.from(secret, 'base64url') });
  return candidates
    .filter(({ bytes }) => bytes.length >= 8 && bytes.filter((b) => b < 0x20 || b > 0x7e).length <= bytes.length * TEXT_NON_PRINTABLE_SHARE)
    .map(({ encoding, bytes }) => ({ encoding, text: bytes.toString('latin1') }));
}

function estimateText(secret: string): SecretStrength {
  const judged: string[] = [];
  for (const ch of secret) {
    if (judged.length === JUDGED_PREFIX_CHARS) break;
    judged.push(ch);
  }
  const result = zxcvbn().check(judged.join(''));
  const zxcvbnBits = result.guessesLog10 * Math.log2(10);
  const distinct = new Set(judged).size;
  const alphabetBits = distinct <= 1 ? 0 : judged.length * Math.log2(distinct);
  const findings = describe(result.sequence);
  if (alphabetBits < zxcvbnBits) findings.push(`it uses only ${distinct} distinct symbol${distinct === 1 ? '' : 's'}`);
  return { bits: Math.floor(Math.min(zxcvbnBits, alphabetBits)), judgedAll: judged.join('').length === secret.length, findings };
}

/** zxcvbn's matches as operator words, each kind once, in the order found. */
function describe(sequence: readonly MatchExtended[]): string[] {
  const words = new Set<string>();
  for (const m of sequence) {
    switch (m.pattern) {
      case 'dictionary':
        words.add(m.l33t ? 'dictionary words in l33t spelling' : m.reversed ? 'reversed dictionary words' : 'dictionary words or common passwords');
        break;
      case 'spatial': words.add('a keyboard walk'); break;
      case 'repeat': words.add('a repeated pattern'); break;
      case 'sequence': words.add('a regular sequence (abcd, 1357)'); break;
      case 'date': words.add('a date'); break;
      case 'regex': words.add('a recent year'); break;
      default: break; // bruteforce, separators: what the estimate credits in full
    }
  }
  return [...words].map((w) => `it contains ${w}`);
}

/**
 * Why `secret` is too weak, or undefined when it passes. The message says the estimate and the
 * requirement, never the secret nor a part of it; the caller adds the file and the key path, and
 * `fix` (default: gen-token).
 */
export function secretWeakness(secret: string, fix: string = GEN_TOKEN_HINT): string | undefined {
  const bytes = Buffer.byteLength(secret, 'utf8');
  const strength = estimateSecretStrength(secret);
  if (bytes >= MIN_SECRET_BYTES && strength.bits >= MIN_SECRET_BITS) return undefined;
  const why = [...strength.findings];
  if (bytes < MIN_SECRET_BYTES) why.unshift(`it is ${bytes} bytes long, at least ${MIN_SECRET_BYTES} are required`);
  if (!strength.judgedAll) why.push(`only its first ${JUDGED_PREFIX_CHARS} characters are judged`);
  const reasons = why.length > 0 ? ` (${why.join('; ')})` : '';
  return `estimated at ${strength.bits} bits by a conservative estimate, at least ${MIN_SECRET_BITS} are required${reasons}; ${fix}`;
}
