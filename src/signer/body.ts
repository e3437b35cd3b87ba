/**
 * The primary's body, made to meet the guard's body contract (replay/body-contract.ts) while
 * every byte the primary wrote stays as it was:
 * - it must be a strict JSON object (the guard's own parser judges it, same reason codes);
 * - `source_pop` absent: this POP's id is inserted as the first member; naming this POP: kept;
 *   naming another POP: refused (403 BODY_SOURCE_POP_MISMATCH), since the signer only ever
 *   speaks for its own POP; not a string: refused (400 BODY_SOURCE_POP_MISSING);
 * - `timestamp` and `nonce`, when present, are rewritten per attempt to the attempt's
 *   `webhook-timestamp` and `webhook-id` (the guard requires them equal, and every retry has a
 *   new id and time); when absent they stay absent.
 *
 * Why not JSON.parse + JSON.stringify: re-serialising would change the bytes the backup gets
 * (number forms, integers above 2^53, escapes, member order). Only the spans named above are
 * replaced, found by a scan of the top-level members of the already-validated text.
 */
import { isJsonArray, parseReplicationBody, topLevelMembers } from '../replay/body-contract.ts';
import type { JsonBounds } from '../replay/json-structure.ts';
import { Rejection } from '../pipeline/reasons.ts';

export interface PreparedBody {
  /** Number of `entries`, when present (an array: the guard's contract). */
  readonly entries: number | undefined;
  /** True when `source_pop` was absent and has been inserted. */
  readonly sourcePopInserted: boolean;
  /** The bytes to send for one attempt. */
  render(webhookId: string, timestampSeconds: number): Buffer;
}


/**
 * Checks and prepares the body; throws a Rejection with the guard's reason code when it cannot
 * pass. `bounds`: the signer's own `limits.max_json_*` (keep them within the guard's).
 */
export function prepareBody(raw: Buffer, pop: string, bounds: JsonBounds): PreparedBody {
  const body = parseReplicationBody(raw, bounds);
  if (body.has.sourcePop && typeof body.sourcePop !== 'string') throw new Rejection('BODY_SOURCE_POP_MISSING', 'source_pop is not a string');
  if (typeof body.sourcePop === 'string' && body.sourcePop !== pop) {
    throw new Rejection('BODY_SOURCE_POP_MISMATCH', `source_pop ${JSON.stringify(body.sourcePop.slice(0, 64))} is not this POP (${pop})`);
  }
  if (body.has.entries && !isJsonArray(body.entries)) throw new Rejection('BODY_ENTRIES_INVALID', 'entries is not an array');

  // parseReplicationBody accepted the text as UTF-8, so decoding and re-encoding is lossless.
  const text = raw.toString('utf8');
  const members = topLevelMembers(text);
  const parts: Array<{ literal: string } | { field: 'timestamp' | 'nonce' }> = [];
  let cursor = 0;
  if (!body.has.sourcePop) {
    // pop is [A-Za-z0-9._-]: it needs no JSON escaping.
    const open = text.indexOf('{') + 1;
    parts.push({ literal: `${text.slice(0, open)}"source_pop":${JSON.stringify(pop)}${members.length > 0 ? ',' : ''}` });
    cursor = open;
  }
  for (const m of members) {
    const field = m.key === 'timestamp' ? 'timestamp' : m.key === 'nonce' ? 'nonce' : undefined;
    if (field === undefined) continue;
    parts.push({ literal: text.slice(cursor, m.start) }, { field });
    cursor = m.end;
  }
  parts.push({ literal: text.slice(cursor) });

  return {
    entries: isJsonArray(body.entries) ? body.entries.length : undefined,
    sourcePopInserted: !body.has.sourcePop,
    render(webhookId, timestampSeconds) {
      let out = '';
      for (const p of parts) {
        if ('literal' in p) out += p.literal;
        else out += p.field === 'timestamp' ? String(timestampSeconds) : JSON.stringify(webhookId);
      }
      return Buffer.from(out, 'utf8');
    },
  };
}
