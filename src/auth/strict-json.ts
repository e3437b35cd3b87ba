/**
 * Strict JSON for JOSE headers and JWT claim sets: well-formed UTF-8, a top-level object, and
 * no member name twice. RFC 7515 section 5.2 and RFC 7519 section 7.2 require a recipient to
 * refuse duplicate names (or take the last): refusing is the only safe choice, since another
 * parser in the chain may take the first. JSON.parse silently keeps the last one, so the
 * duplicates are found by a scan of the (already validated) text.
 *
 * Hand-written: no project dependency reports duplicate names; the scan is small because
 * JSON.parse has already proven the text well-formed.
 */

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

export type StrictJsonResult =
  | { readonly ok: true; readonly value: Record<string, unknown> }
  | { readonly ok: false; readonly problem: string };

export function parseJsonObject(bytes: Uint8Array): StrictJsonResult {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    return { ok: false, problem: 'not UTF-8' };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, problem: 'not JSON' };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { ok: false, problem: 'not a JSON object' };
  if (hasDuplicateMember(text)) return { ok: false, problem: 'a member name appears twice' };
  return { ok: true, value: value as Record<string, unknown> };
}

/** Scans well-formed JSON text; true when an object repeats a member name (after unescaping). */
export function hasDuplicateMember(text: string): boolean {
  // One entry per open container: a Set of names for an object, undefined for an array.
  const stack: Array<Set<string> | undefined> = [];
  let expectName = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '{') {
      stack.push(new Set());
      expectName = true;
    } else if (ch === '[') {
      stack.push(undefined);
      expectName = false;
    } else if (ch === '}' || ch === ']') {
      stack.pop();
      expectName = false;
    } else if (ch === ',') {
      expectName = stack[stack.length - 1] !== undefined;
    } else if (ch === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      if (expectName) {
        const name = JSON.parse(text.slice(i, end + 1)) as string;
        const names = stack[stack.length - 1]!;
        if (names.has(name)) return true;
        names.add(name);
        expectName = false;
      }
      i = end;
    }
  }
  return false;
}
