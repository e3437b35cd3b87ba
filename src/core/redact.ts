/**
 * Credentials in client text: recognising them, and cutting them out of what is logged. One scan
 * serves both the url-token stage (auth/url-token.ts refuses a request whose URL carries a
 * credential, before anything else reads it) and every log writer (audit/event.ts,
 * audit/signer-event.ts, the operational log's error serializer): what the stage would refuse,
 * the audit would cut, and the other way round.
 *
 * Shapes recognised (`TokenShape`):
 *  - `jwt`: a JWS/JWE compact form, a base64url run containing `eyJ` (base64url of `{"`, how every
 *    JOSE header starts) followed by a `.`. One dot is enough: a JWT cut short (by a client, or
 *    by a detail that quotes 64 characters) still carries its claims.
 *  - `signature-key`: the Standard Webhooks key prefixes `whsec_`, `whsk_`, `whpk_` (replay/keys.ts),
 *    in any case.
 *  - `credential-parameter`: `name=` where the name, lower-cased with `-` read as `_`, is one of
 *    `CREDENTIAL_PARAMS` (`access_token=`, `token=`, `jwt=`, ...). A bare word (`/token/refresh`)
 *    is a normal path and is not a hit.
 *  - `base64-run`: a run of base64 / base64url / RFC 6750 b64token characters (`A-Z a-z 0-9 + / _
 *    ~ -`, then `=` padding) of at least `MIN_SECRET_BYTES` (32) characters: the shortest bearer
 *    secret the guard accepts (auth/bearer.ts; a b64token character is one byte), so no configured
 *    secret is too short to be seen. A run is exempt when each of its `/`-segments is "plain":
 *    no piece between `- _ ~ +` of 32 characters or more (of at least 8 distinct symbols), and
 *    its letters either all of one case (`f1f2e09f-187c`, `replication`, `ABCD-01`) or
 *    capitalised words (`applyBatchNow`: every letter run is words of an optional capital and at
 *    least two small letters). That keeps UUIDs
 *    (the request id among them), slugs and ordinary paths (`/api/replication/apply`) whole, while
 *    32 random bytes in base64 are plain with negligible probability (about 17 capitals, each
 *    followed by two small letters). The token loader refuses a secret this scan does not
 *    recognise (auth/bearer.ts), so a configured secret is always seen.
 *
 *    Where a run is cut: at its first segment that is not plain, moved back over the segments
 *    just before it that are not plain lower-case words of three letters or more. A standard
 *    base64 secret can contain `/`, so its head may be a segment of its own (`x7/AbC...`); such
 *    a head is cut too, and what may survive is a head that reads as a small-letter word
 *    (`abc/...`), a few characters of a secret at most (test/unit/audit/redact.test.ts measures it).
 *
 * The text is scanned as sent and after one and two rounds of percent-decoding (`%2E` is `.`,
 * `%252E` is what a client that encodes twice sends), each round linear; a third layer is no
 * client's mistake. Decoding maps every position back to the original, so a cut always falls in
 * the original text, at the start of the word that holds the hit (words end at any character
 * outside `A-Z a-z 0-9 % . _ ~ + = -`, so at `/`, `;`, space, `(`...).
 *
 * Linear time on any input: every loop below visits each character a bounded number of times
 * (no regex, no backtracking); `Meter` counts those visits so that tests can prove it on
 * adversarial inputs (test/unit/audit/redact.test.ts).
 *
 * Hand-written: secret scanners (gitleaks, trufflehog) are regex sets with entropy scores over
 * files, not a linear scan that also says where to cut; pino's `redact` censors by key path,
 * not by content.
 */
import { MIN_SECRET_BYTES } from '../crypto/secret-strength.ts';

export type TokenShape = 'jwt' | 'signature-key' | 'credential-parameter' | 'base64-run';

export interface TokenHit {
  readonly shape: TokenShape;
  /** Index in the original text where the word holding the credential begins: cut here. */
  readonly start: number;
  /** For `credential-parameter`: the name as matched in CREDENTIAL_PARAMS (our text, not the client's). */
  readonly parameter?: string;
}

/** Counts character visits, for tests of linear cost. */
export interface Meter {
  steps: number;
}

/** What replaces a cut tail in a log field (pino's own censor word). */
export const REDACTED = '[Redacted]';

/** Parameter names (compared lower-case, with "-" read as "_") that carry credentials in the wild. */
export const CREDENTIAL_PARAMS: ReadonlySet<string> = new Set([
  'access_token', 'token', 'id_token', 'refresh_token', 'auth', 'auth_token', 'authorization', 'bearer',
  'jwt', 'api_key', 'apikey', 'key', 'secret', 'client_secret', 'password', 'passwd', 'signature', 'sig',
  'private_token', 'session_token', 'access_key', 'secret_key',
]);

/** A name longer than every entry of CREDENTIAL_PARAMS is never compared (bounds the work per `=`). */
const MAX_PARAM_NAME = Math.max(...[...CREDENTIAL_PARAMS].map((p) => p.length));

const KEY_PREFIXES = ['whsec_', 'whsk_', 'whpk_'] as const;

/**
 * A piece of 32 characters or more counts as random only with this many distinct symbols:
 * `xxxx...` or `0000...` is padding, not a key. The token loader refuses a secret this scan does
 * not see (auth/bearer.ts, `hasTokenShape`), so a secret of fewer symbols that the strength
 * estimate would pass (crypto/secret-strength.ts) is refused there.
 */
const MIN_DISTINCT_SYMBOLS = 8;

/** Rounds of percent-decoding after the text as sent (see the module comment). */
const DECODE_ROUNDS = 2;

// Character classes, ASCII only (anything else is a word boundary and in no run).
const B64URL = 1; // A-Z a-z 0-9 _ -
const RUN = 2; // B64URL and + / ~: the b64token alphabet without "." and "="
const UPPER = 4;
const LOWER = 8;
const WORD = 16; // A-Z a-z 0-9 % . _ ~ + = -: a cut never falls inside these
const SEPARATOR = 32; // - _ ~ + /: between the pieces of a run

const CLASS = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  let f = 0;
  if (/[A-Za-z0-9_-]/.test(ch)) f |= B64URL | RUN;
  if (/[+/~]/.test(ch)) f |= RUN;
  if (/[A-Z]/.test(ch)) f |= UPPER;
  if (/[a-z]/.test(ch)) f |= LOWER;
  if (/[A-Za-z0-9%._~+=-]/.test(ch)) f |= WORD;
  if (/[-_~+/]/.test(ch)) f |= SEPARATOR;
  CLASS[c] = f;
}
const classOf = (c: number) => (c < 128 ? CLASS[c]! : 0);

const SLASH = 0x2f;
const DOT = 0x2e;
const EQUALS = 0x3d;

/**
 * The first credential-shaped word in `text`, or undefined. Linear in `text.length`.
 */
export function findTokenShape(text: string, meter?: Meter): TokenHit | undefined {
  let best: { shape: TokenShape; start: number; parameter?: string } | undefined;
  const consider = (hit: { shape: TokenShape; start: number; parameter?: string } | undefined) => {
    if (hit && (!best || hit.start < best.start)) best = hit;
  };
  consider(scan(text, undefined, meter));
  let view: { text: string; raw: Int32Array } | undefined;
  let current = text;
  for (let round = 0; round < DECODE_ROUNDS; round++) {
    const next = percentDecode(current, view?.raw, meter);
    if (!next) break;
    view = next;
    current = next.text;
    consider(scan(current, view.raw, meter));
  }
  if (!best) return undefined;
  // Back to the start of the word, in the original text.
  let start = best.start;
  while (start > 0 && classOf(text.charCodeAt(start - 1)) & WORD) {
    if (meter) meter.steps += 1;
    start -= 1;
  }
  return { ...best, start };
}

/** True when `text` holds something credential-shaped anywhere. */
export function hasTokenShape(text: string): boolean {
  return findTokenShape(text) !== undefined;
}

/**
 * `text` as a log may keep it: cut at the first credential-shaped word, which is replaced with
 * REDACTED (so `/api/replication/eyJ…` becomes `/api/replication/[Redacted]`); `cut` says so.
 */
export function redactClientText(text: string, meter?: Meter): { text: string; cut: boolean } {
  const hit = findTokenShape(text, meter);
  return hit ? { text: `${text.slice(0, hit.start)}${REDACTED}`, cut: true } : { text, cut: false };
}

/**
 * One round of percent-decoding: every `%XX` (two hex digits) becomes the character with that
 * code; anything else is kept. `raw[i]` is the index in the original text of the output's
 * character `i` (through `previous`, the map of an earlier round). Undefined when nothing decodes.
 */
function percentDecode(text: string, previous: Int32Array | undefined, meter?: Meter): { text: string; raw: Int32Array } | undefined {
  const n = text.length;
  if (meter) meter.steps += n;
  if (text.indexOf('%') === -1) return undefined;
  const codes = new Uint16Array(n);
  const raw = new Int32Array(n);
  let out = 0;
  for (let i = 0; i < n; i++) {
    if (meter) meter.steps += 1;
    const c = text.charCodeAt(i);
    const hi = c === 0x25 && i + 2 < n ? hexValue(text.charCodeAt(i + 1)) : -1;
    const lo = hi >= 0 ? hexValue(text.charCodeAt(i + 2)) : -1;
    raw[out] = previous ? previous[i]! : i;
    if (lo >= 0) {
      codes[out++] = hi * 16 + lo;
      i += 2;
    } else {
      codes[out++] = c;
    }
  }
  if (out === n) return undefined;
  let decoded = '';
  const CHUNK = 8192;
  for (let i = 0; i < out; i += CHUNK) decoded += String.fromCharCode(...codes.subarray(i, Math.min(out, i + CHUNK)));
  return { text: decoded, raw: raw.subarray(0, out) };
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

/**
 * The single pass: every rule of the module comment, each with constant work per character.
 * Positions are reported in the original text (through `raw`), before the back-up to the word.
 */
function scan(s: string, raw: Int32Array | undefined, meter?: Meter): { shape: TokenShape; start: number; parameter?: string } | undefined {
  const n = s.length;
  const at = (i: number) => (raw ? raw[i]! : i);
  let best: { shape: TokenShape; start: number; parameter?: string } | undefined;
  const hit = (i: number, shape: TokenShape, parameter?: string) => {
    const start = at(i);
    if (!best || start < best.start) best = parameter === undefined ? { shape, start } : { shape, start, parameter };
  };

  // The base64url run (JWT segments, parameter names).
  let urlStart = -1;
  let eyj = false;
  // The long run, and the state of its current '/'-segment.
  let runStart = -1;
  let runLength = 0;
  let padding = false;
  let cutAt = -1; // where the run is cut, once a segment that is not plain was seen
  let streakStart = -1; // first of the segments since the last lower-case word segment
  let segmentStart = -1;
  let segmentLength = 0;
  let segmentUpper = false;
  let segmentLower = false;
  let segmentOther = false; // a digit, or a separator other than - and _
  let segmentLongPiece = false;
  let segmentNotWords = false; // its letters are not capitalised words
  let pieceLength = 0;
  let pieceDistinct = 0;
  let pieceId = 1;
  const seenInPiece = new Int32Array(128); // pieceId of the last piece that held each character
  let letters = 0; // letters in the current letter run (0: not in one)
  let smallInWord = 0; // small letters since the current word began

  const endLetters = () => {
    if (letters > 0 && smallInWord < 2) segmentNotWords = true;
    letters = 0;
    smallInWord = 0;
  };
  const endPiece = () => {
    if (pieceLength >= MIN_SECRET_BYTES && pieceDistinct >= MIN_DISTINCT_SYMBOLS) segmentLongPiece = true;
    pieceLength = 0;
    pieceDistinct = 0;
    pieceId += 1;
  };
  const endSegment = () => {
    endLetters();
    endPiece();
    if (segmentLength > 0) {
      const plain = !segmentLongPiece && (!segmentUpper || !segmentLower || !segmentNotWords);
      const word = plain && segmentLength >= 3 && !segmentUpper && !segmentOther;
      if (word) streakStart = -1;
      else if (streakStart < 0) streakStart = segmentStart;
      if (!plain && cutAt < 0) cutAt = streakStart;
    }
    segmentLength = 0;
    segmentUpper = false;
    segmentLower = false;
    segmentOther = false;
    segmentLongPiece = false;
    segmentNotWords = false;
  };
  const endRun = () => {
    endSegment();
    if (runLength >= MIN_SECRET_BYTES && cutAt >= 0) hit(cutAt, 'base64-run');
    runStart = -1;
    runLength = 0;
    padding = false;
    cutAt = -1;
    streakStart = -1;
  };

  for (let i = 0; i <= n; i++) {
    if (meter) meter.steps += 1;
    const c = i < n ? s.charCodeAt(i) : -1; // -1: the end, which closes every open run
    const f = c >= 0 ? classOf(c) : 0;

    // JWT and credential parameter names: the base64url run before a "." or "=".
    if (f & B64URL) {
      if (urlStart < 0) {
        urlStart = i;
        eyj = false;
      } else if (c === 0x4a && i - urlStart >= 2 && s.charCodeAt(i - 1) === 0x79 && s.charCodeAt(i - 2) === 0x65) {
        eyj = true; // "eyJ"
      }
    } else {
      if (urlStart >= 0) {
        if (c === DOT && eyj) hit(urlStart, 'jwt');
        if (c === EQUALS && i - urlStart <= MAX_PARAM_NAME) {
          const name = s.slice(urlStart, i).toLowerCase().replaceAll('-', '_');
          if (CREDENTIAL_PARAMS.has(name)) hit(urlStart, 'credential-parameter', name);
        }
      }
      urlStart = -1;
    }

    // Signature keys: a fixed prefix, compared in constant time per "w".
    if ((c | 0x20) === 0x77) {
      const head = s.slice(i, i + 6).toLowerCase();
      if (KEY_PREFIXES.some((p) => head.startsWith(p))) hit(i, 'signature-key');
    }

    // Long runs.
    if (c === EQUALS) {
      if (runStart >= 0) {
        padding = true;
        runLength += 1;
      }
    } else if (f & RUN) {
      if (padding) endRun(); // padding ends a run: what follows starts the next one
      if (runStart < 0) {
        runStart = i;
        segmentStart = i;
      }
      runLength += 1;
      if (c === SLASH) {
        endSegment();
        segmentStart = i + 1;
        continue;
      }
      segmentLength += 1;
      if (f & SEPARATOR) {
        endLetters();
        endPiece();
        if (c !== 0x2d && c !== 0x5f) segmentOther = true; // "~" or "+"
      } else {
        pieceLength += 1;
        if (seenInPiece[c] !== pieceId) {
          seenInPiece[c] = pieceId;
          pieceDistinct += 1;
        }
        if (f & UPPER) {
          if (letters > 0 && smallInWord < 2) segmentNotWords = true;
          segmentUpper = true;
          letters += 1;
          smallInWord = 0;
        } else if (f & LOWER) {
          segmentLower = true;
          letters += 1;
          smallInWord += 1;
        } else {
          endLetters(); // a digit
          segmentOther = true;
        }
      }
    } else if (runStart >= 0) {
      endRun();
    }
  }
  return best;
}
