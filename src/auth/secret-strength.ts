/**
 * Strength checks for shared secrets (bearer tokens now, request-signing secrets later): a
 * secret shorter than 32 bytes, or one that is visibly not random, is refused at start-up and
 * at reload with the reason, so the operator can replace it.
 *
 * Hand-written: no dependency of the project estimates secret strength, and the rules are few.
 * They target the mistakes people make (a password, a repeated character, a pattern, a word),
 * not a statistical randomness test; `replguard gen-token` output (32 random bytes, base64url)
 * passes them all except with negligible probability (see the unit test's sample).
 */

/** Shortest acceptable secret, in bytes (of the file's content, after the trailing newline). */
export const MIN_SECRET_BYTES = 32;

/** Fewest distinct byte values: a hex secret has ~16, base64url ~25; 7 or fewer is a pattern. */
const MIN_DISTINCT_BYTES = 8;

/** Why the secret is too weak, or undefined when it passes. */
export function secretWeakness(secret: Uint8Array): string | undefined {
  const n = secret.length;
  if (n < MIN_SECRET_BYTES) return `it is ${n} bytes long; at least ${MIN_SECRET_BYTES} are required (use \`replguard gen-token\`)`;
  if (secret.every((b) => b === secret[0])) return 'it is one repeated byte';
  const period = shortestPeriod(secret);
  if (period !== undefined) return `it repeats a ${period}-byte pattern`;
  const distinct = new Set(secret).size;
  if (distinct < MIN_DISTINCT_BYTES) return `it uses only ${distinct} distinct symbols`;
  if (isRegularSequence(secret)) return 'it is a regular sequence (such as abcdef... or 13579...)';
  if (looksLikeWords(secret)) return 'it looks like words (a password or passphrase), not random bytes';
  return undefined;
}

/** The shortest p <= n/2 such that the secret is its first p bytes repeated (a tail allowed). */
function shortestPeriod(s: Uint8Array): number | undefined {
  for (let p = 1; p <= s.length / 2; p++) {
    let repeats = true;
    for (let i = p; i < s.length; i++) {
      if (s[i] !== s[i - p]) {
        repeats = false;
        break;
      }
    }
    if (repeats) return p;
  }
  return undefined;
}

/** Most neighbouring bytes differ by the same step (a counting or keyboard-walk sequence). */
function isRegularSequence(s: Uint8Array): boolean {
  const steps = new Map<number, number>();
  for (let i = 1; i < s.length; i++) {
    const d = s[i]! - s[i - 1]!;
    steps.set(d, (steps.get(d) ?? 0) + 1);
  }
  return Math.max(...steps.values()) * 2 > s.length - 1;
}

/**
 * Words: letters forming lower-case runs of two or more, each optionally capitalised
 * (`correcthorse`, `CorrectHorseBattery`, `password-password-2024`), with few other symbols.
 * Random base64url almost never has that shape: its ~17 capitals would each have to be
 * followed by two lower-case letters. Hex never does: it is mostly digits.
 */
function looksLikeWords(s: Uint8Array): boolean {
  const text = Buffer.from(s).toString('latin1');
  if (!/^[\x20-\x7e]+$/.test(text)) return false;
  const others = text.replace(/[A-Za-z]/g, '').length;
  if (others * 10 >= text.length * 3) return false;
  // `(?![a-z])` makes each word take its whole lower-case run: without it a run of n letters can
  // be split into words in exponentially many ways, all tried before a failing end (a 44-byte
  // file of 42 small letters and "AB" took seconds, a few more letters hours).
  return /^[^A-Za-z]*(?:[A-Z]?[a-z]{2,}(?![a-z])[^A-Za-z]*)+$/.test(text);
}
