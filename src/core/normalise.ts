/**
 * Request-target normalisation for the route allow-list.
 *
 * Hand-written because no library normalises with refusal semantics: URL parsers resolve
 * `..` and decode `%2F` (that is the attack), where a guard must refuse them. Rules, from
 * RFC 3986 sections 3.3 and 6.2.2:
 *  - only origin-form (`/path[?query]`); absolute-form, `*` and fragments are refused;
 *  - only pchar, "/" and valid percent-encodings; anything else (space, "\", controls, non-ASCII) is refused;
 *  - an encoded "/", "\", "." or control byte is refused: it would mean one thing here and another upstream;
 *  - other percent-encoded unreserved characters are decoded (`%7E` is `~`), the rest keep upper-case hex;
 *  - empty segments (`//`) and dot segments (`.`, `..`) are refused.
 */

export type NormalisedTarget =
  | { readonly ok: true; readonly path: string; readonly query: string | undefined }
  | { readonly ok: false };

const HEX = /^[0-9A-Fa-f]{2}$/;
// pchar = unreserved / pct-encoded / sub-delims / ":" / "@"  (plus "/" between segments)
const PLAIN = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/]$/;
const UNRESERVED = /^[A-Za-z0-9\-_~]$/; // "." is unreserved too, but an encoded dot is refused

export function normaliseTarget(target: string): NormalisedTarget {
  if (target.length === 0 || target.charCodeAt(0) !== 0x2f /* / */) return { ok: false };
  if (target.includes('#')) return { ok: false };
  const q = target.indexOf('?');
  const rawPath = q === -1 ? target : target.slice(0, q);
  const query = q === -1 ? undefined : target.slice(q + 1);
  const path = normalisePath(rawPath);
  return path === undefined ? { ok: false } : { ok: true, path, query };
}

/** The normal form of an absolute path, or undefined when the path must be refused. */
export function normalisePath(raw: string): string | undefined {
  if (raw.length === 0 || raw[0] !== '/') return undefined;
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i]!;
    if (ch === '%') {
      const hex = raw.slice(i + 1, i + 3);
      if (!HEX.test(hex)) return undefined;
      const code = parseInt(hex, 16);
      const decoded = String.fromCharCode(code);
      if (code < 0x20 || code === 0x7f || decoded === '/' || decoded === '\\' || decoded === '.') return undefined;
      out += UNRESERVED.test(decoded) ? decoded : `%${hex.toUpperCase()}`;
      i += 2;
    } else if (PLAIN.test(ch)) {
      out += ch;
    } else {
      return undefined;
    }
  }
  const segments = out.split('/');
  // segments[0] is the empty string before the leading "/"; a trailing "/" leaves a final
  // empty segment, which is legal (it simply matches no route) but an inner one is "//".
  for (let s = 1; s < segments.length; s++) {
    const seg = segments[s]!;
    if (seg === '.' || seg === '..') return undefined;
    if (seg === '' && s !== segments.length - 1) return undefined;
  }
  if (out === '//') return undefined;
  return out;
}
