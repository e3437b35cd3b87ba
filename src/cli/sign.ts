/**
 * `replguard sign --key FILE --body FILE [--id ID] [--timestamp T]`: the Standard Webhooks
 * headers for a request, one `name: value` line each, for `curl -H @FILE`. Several --key
 * options sign with each (a rotation). Without --id a random one is made; without --timestamp
 * the current time is used.
 */
import { readFileSync } from 'node:fs';
import process from 'node:process';
import { ConfigError, type ConfigProblem } from '../config/errors.ts';
import { readSignKeyFile } from '../replay/keys.ts';
import { isValidWebhookId, isValidWebhookTimestamp, MAX_SIGNATURE_ENTRIES, type SignKey } from '../replay/signature.ts';
import { newWebhookId, signatureHeaders } from '../replay/signing.ts';
import { parseCommandArgs, stringArg, stringsArg } from './args.ts';

export async function run(argv: string[], now: () => number = Date.now): Promise<number> {
  const args = parseCommandArgs('sign', argv);
  const values = { id: stringArg(args, 'id'), timestamp: stringArg(args, 'timestamp') };
  const keyFiles = stringsArg(args, 'key');
  const bodyFile = stringArg(args, 'body')!;
  const problems: ConfigProblem[] = [];
  if (keyFiles.length > MAX_SIGNATURE_ENTRIES) problems.push({ path: 'replguard sign --key', message: `at most ${MAX_SIGNATURE_ENTRIES} keys` });
  const keys: SignKey[] = [];
  keyFiles.forEach((file, i) => {
    const result = readSignKeyFile(file, `replguard sign --key (${i + 1})`);
    if ('problem' in result) problems.push(result.problem);
    else keys.push(result.key);
  });
  const id = values.id ?? newWebhookId();
  if (!isValidWebhookId(id)) problems.push({ path: 'replguard sign --id', message: 'a webhook-id is 16 to 128 characters of [A-Za-z0-9_-]' });
  const timestamp = values.timestamp ?? String(Math.floor(now() / 1000));
  if (!isValidWebhookTimestamp(timestamp)) problems.push({ path: 'replguard sign --timestamp', message: 'a timestamp is Unix seconds, 1 to 12 digits' });
  let body: Buffer | undefined;
  try {
    body = readFileSync(bodyFile);
  } catch (err) {
    problems.push({ path: 'replguard sign --body', message: `cannot read ${bodyFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` });
  }
  if (problems.length > 0 || !body) throw new ConfigError(problems);

  for (const warning of bodyWarnings(body, id, timestamp)) process.stderr.write(`warning: ${warning}\n`);
  const headers = signatureHeaders(keys, body, id, timestamp);
  process.stdout.write(Object.entries(headers).map(([name, value]) => `${name}: ${value}\n`).join(''));
  return 0;
}

/** What the guard's body contract would refuse, said before the request is sent. */
function bodyWarnings(body: Buffer, id: string, timestamp: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return ['the body is not JSON; the guard refuses it (BODY_NOT_JSON)'];
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return ['the body is not a JSON object; the guard refuses it (BODY_NOT_OBJECT)'];
  const fields = parsed as Record<string, unknown>;
  const out: string[] = [];
  if ('timestamp' in fields && fields.timestamp !== Number(timestamp)) out.push(`the body's timestamp is not ${timestamp}; the guard refuses it (BODY_TIMESTAMP_MISMATCH); pass --timestamp or fix the body`);
  if ('nonce' in fields && fields.nonce !== id) out.push(`the body's nonce is not the webhook-id ${id}; the guard refuses it (BODY_NONCE_MISMATCH); pass --id or fix the body`);
  return out;
}
