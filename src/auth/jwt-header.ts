
import { JWT_ALGORITHMS, type JwtAlgorithm } from '../config/schema.ts';
import { Rejection } from '../pipeline/reasons.ts';
import { parseJsonObject } from './strict-json.ts';

/** Largest accepted token, in bytes (characters: a compact JWS is ASCII). */
export const MAX_TOKEN_BYTES = 8 * 1024;

export const ALLOWED_ALGS: ReadonlySet<string> = new Set(JWT_ALGORITHMS);



export interface JwsParts {
  readonly header: Record<string, unknown>;
  readonly alg: JwtAlgorithm;
  readonly kid: string | undefined;
  /** The decoded payload bytes (not yet trusted). */
  readonly payload: Buffer;
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;
const REFUSED_HEADERS = ['crit', 'b64', 'cty', 'zip', 'jwk', 'jku', 'x5u', 'x5c'] as const;

function decodeSegment(segment: string, what: string): Buffer {
  // Canonical base64url only (RFC 7515 section 2: no padding, no other characters, unused bits
  // zero), so that one token has one encoding.
  if (!BASE64URL.test(segment) || segment.length % 4 === 1) throw new Rejection('AUTH_JWT_MALFORMED', `${what} is not base64url`);
  const bytes = Buffer.from(segment, 'base64url');
  if (bytes.toString('base64url') !== segment) throw new Rejection('AUTH_JWT_MALFORMED', `${what} is not canonical base64url`);
  return bytes;
}

/** A printable header value for the audit detail, or a placeholder (never raw client text). */
function shown(value: unknown): string {
  return typeof value === 'string' && /^[A-Za-z0-9+._-]{1,32}$/.test(value) ? value : '(other)';
}

/**
 * Step 1 and 2 of the module comment: the token's shape and header policy, for any compact JWS.
 * Throws a Rejection (AUTH_JWT_MALFORMED or AUTH_JWT_HEADER_REFUSED).
 */
export function checkJwsPolicy(token: string): JwsParts {
  if (token.length > MAX_TOKEN_BYTES) throw new Rejection('AUTH_JWT_MALFORMED', `larger than ${MAX_TOKEN_BYTES} bytes`);
  const segments = token.split('.');
  if (segments.length !== 3) throw new Rejection('AUTH_JWT_MALFORMED', `${segments.length} segments, not 3`);
  const [h, p, s] = segments as [string, string, string];
  const parsed = parseJsonObject(decodeSegment(h, 'the header'));
  if (!parsed.ok) throw new Rejection('AUTH_JWT_MALFORMED', `the header: ${parsed.problem}`);
  const header = parsed.value;
  const alg = header.alg;
  if (typeof alg !== 'string' || !ALLOWED_ALGS.has(alg)) throw new Rejection('AUTH_JWT_HEADER_REFUSED', `alg ${shown(alg)} is not accepted`);
  for (const name of REFUSED_HEADERS) {
    if (header[name] !== undefined) throw new Rejection('AUTH_JWT_HEADER_REFUSED', `header parameter "${name}" is refused`);
  }
  if (header.typ !== undefined && !(typeof header.typ === 'string' && ['jwt', 'application/jwt'].includes(header.typ.toLowerCase()))) {
    throw new Rejection('AUTH_JWT_HEADER_REFUSED', `typ ${shown(header.typ)} is not JWT`);
  }
  const kid = header.kid;
  if (kid !== undefined && (typeof kid !== 'string' || kid.length === 0 || kid.length > 256)) throw new Rejection('AUTH_JWT_MALFORMED', 'kid is not a string of 1 to 256 characters');
  // The header is judged first, so that alg "none" is named as such, not as a missing signature.
  const payload = decodeSegment(p, 'the payload');
  if (decodeSegment(s, 'the signature').length === 0) throw new Rejection('AUTH_JWT_MALFORMED', 'no signature');
  return { header, alg: alg as JwtAlgorithm, kid: kid as string | undefined, payload };
}
