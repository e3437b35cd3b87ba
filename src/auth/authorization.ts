/**
 * Reading the one `Authorization: Bearer` credential that `bearer` and `jwt` share, and telling
 * the two apart. Only this header is read: never a query parameter, a cookie or a body field.
 *
 * How a value is classified: a JWT always contains "." (three base64url segments), and a bearer
 * secret never does (the token loader refuses one that does). So a value with a "." is judged as
 * a JWT only, anything else as a shared secret only; no value is ever tried both ways.
 */
import type { IncomingMessage } from 'node:http';
import { Rejection } from '../pipeline/reasons.ts';

/** RFC 6750 section 2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** The credential of the request's single `Authorization: Bearer` header; refuses anything else. */
export function readBearerCredential(req: Pick<IncomingMessage, 'rawHeaders'>): string {
  // Node keeps only the first of repeated Authorization headers in req.headers; count them raw.
  let value: string | undefined;
  let count = 0;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 13 && raw[i]!.toLowerCase() === 'authorization') {
      count += 1;
      value = raw[i + 1];
    }
  }
  if (count === 0 || value === undefined) throw new Rejection('AUTH_CREDENTIAL_MISSING', 'no Authorization header');
  if (count > 1) throw new Rejection('AUTH_CREDENTIAL_MALFORMED', `${count} Authorization headers`);
  const space = value.indexOf(' ');
  if (space === -1 || value.slice(0, space).toLowerCase() !== 'bearer') {
    throw new Rejection('AUTH_CREDENTIAL_MALFORMED', 'the Authorization scheme is not Bearer');
  }
  const credential = value.slice(space + 1);
  if (!B64TOKEN.test(credential)) throw new Rejection('AUTH_CREDENTIAL_MALFORMED', 'the Bearer credential has characters outside RFC 6750 b64token');
  return credential;
}

/** True for a value that can only be a JWT (see the module comment). */
export function isJwtShaped(credential: string): boolean {
  return credential.includes('.');
}
