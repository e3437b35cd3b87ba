/**
 * `replguard gen-token --out FILE [--not-after TIME|DURATION] [--force]`: a new bearer secret, 32
 * random bytes as base64url, written to FILE with mode 0600 (atomically: a temporary file renamed
 * over FILE, so a watching guard never reads half a secret), and with --not-after its expiry as
 * the file's second line (auth/bearer.ts). Prints the secret's fingerprint, never the secret.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { credentialFingerprint } from '../crypto/secret-compare.ts';
import { hasTokenShape } from '../core/redact.ts';
import { secretWeakness } from '../crypto/secret-strength.ts';
import { formatNotAfterLine } from '../auth/bearer.ts';
import { ConfigError } from '../config/errors.ts';
import { parseDuration } from '../config/units.ts';
import { flagArg, parseCommandArgs, stringArg } from './args.ts';
import { writeSecretFile } from './secret-file.ts';

export function generateToken(): string {
  // Redraw in the (rare) case the token loader would refuse the draw
  // (auth/bearer.ts: the strength checks, and the shape the log redaction recognises).
  for (;;) {
    const token = randomBytes(32).toString('base64url');
    if (secretWeakness(token) === undefined && hasTokenShape(token)) return token;
  }
}

/** Same form as the file's line reads back (auth/bearer.ts): RFC 3339 with Z or an offset. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;

/** `--not-after`: an RFC 3339 time, or a lifetime from now (`30d`, `24h`); in the future either way. */
export function parseNotAfter(value: string, nowMs: number): number {
  const problem = (message: string) => new ConfigError([{ path: 'replguard gen-token --not-after', message }]);
  let at: number;
  if (RFC3339.test(value)) at = Date.parse(value);
  else {
    const lifetime = parseDuration(value);
    if (lifetime === undefined || !/[a-z]$/.test(value)) throw problem(`"${value}" is neither an RFC 3339 time (2027-01-31T00:00:00Z) nor a lifetime with its unit (30d, 24h)`);
    at = nowMs + lifetime;
  }
  if (!Number.isFinite(at)) throw problem(`"${value}" is not a valid time`);
  if (at <= nowMs) throw problem(`${new Date(at).toISOString()} is already past: the secret would be refused at once`);
  // Whole seconds: the line is written without fractions, and must read back as what was asked.
  return Math.floor(at / 1000) * 1000;
}

export async function run(argv: string[]): Promise<number> {
  const args = parseCommandArgs('gen-token', argv);
  const out = stringArg(args, 'out')!;
  const notAfterArg = stringArg(args, 'not-after');
  const notAfter = notAfterArg !== undefined ? parseNotAfter(notAfterArg, Date.now()) : undefined;
  if (existsSync(out) && !flagArg(args, 'force')) {
    throw new ConfigError([{ path: 'replguard gen-token --out', message: `${out} exists; pass --force to replace it (the old secret stops working at the guard's next reload)` }]);
  }
  const token = generateToken();
  writeSecretFile(out, notAfter !== undefined ? `${token}\n${formatNotAfterLine(notAfter)}\n` : `${token}\n`);
  const until = notAfter !== undefined ? `, valid until ${new Date(notAfter).toISOString()}` : '';
  process.stdout.write(`${out}: new bearer secret, fingerprint ${credentialFingerprint(token)}${until}\n`);
  return 0;
}
