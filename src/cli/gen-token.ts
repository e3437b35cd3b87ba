/**
 * `replguard gen-token --out FILE [--force]`: a new bearer secret, 32 random bytes as base64url,
 * written to FILE with mode 0600 (atomically: a temporary file renamed over FILE, so a watching
 * guard never reads half a secret). Prints the secret's fingerprint, never the secret.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { credentialFingerprint } from '../crypto/secret-compare.ts';
import { hasTokenShape } from '../core/redact.ts';
import { secretWeakness } from '../crypto/secret-strength.ts';
import { ConfigError } from '../config/errors.ts';
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

export async function run(argv: string[]): Promise<number> {
  const args = parseCommandArgs('gen-token', argv);
  const out = stringArg(args, 'out')!;
  if (existsSync(out) && !flagArg(args, 'force')) {
    throw new ConfigError([{ path: 'replguard gen-token --out', message: `${out} exists; pass --force to replace it (the old secret stops working at the guard's next reload)` }]);
  }
  const token = generateToken();
  writeSecretFile(out, `${token}\n`);
  process.stdout.write(`${out}: new bearer secret, fingerprint ${credentialFingerprint(token)}\n`);
  return 0;
}
