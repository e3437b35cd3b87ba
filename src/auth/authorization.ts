/**
 * The Authorization stage: the one `Authorization: Bearer` credential that `bearer` and `jwt`
 * share is read once and handed, by its shape, to the verifier that judges it (auth/bearer.ts
 * or auth/jwt.ts, which know nothing of each other). Only this header is read: never a query
 * parameter, a cookie or a body field.
 *
 * How a value is classified: a JWT always contains "." (three base64url segments), and a bearer
 * secret never does (the token loader refuses one that does). So a value with a "." is judged as
 * a JWT only, anything else as a shared secret only; no value is ever tried both ways.
 */
import type { IncomingMessage } from 'node:http';
import type { RequestContext } from '../pipeline/context.ts';
import type { CredentialStage } from '../pipeline/credential-stage.ts';
import { Rejection } from '../pipeline/reasons.ts';
import type { Fact } from '../pipeline/stage.ts';
import type { ReloadResult, ReloadTrigger } from '../reload/source.ts';

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

/** One kind of Authorization credential (a bearer secret, a JWT) and the material it is checked against. */
export interface CredentialVerifier {
  /** The credential's name in `ctx.credentials` and the audit event. */
  readonly name: 'bearer' | 'jwt';
  /** Facts of the context the check reads (the JWT's routes claim reads the path). */
  readonly needs: readonly Fact[];
  /**
   * Judges the credential: records itself in `ctx.credentials`, names the POP through
   * agreeIdentity (auth/identity.ts), or throws a Rejection.
   */
  verify(credential: string, ctx: RequestContext): void | Promise<void>;
  /** Reloads its file-backed material now (e.g. on SIGHUP); never throws. */
  reload(trigger: ReloadTrigger): ReloadResult[];
  close(): void;
}

/**
 * `bearer` and/or `jwt` in auth.methods: the Authorization header is read once; a JWT-shaped
 * value goes to the jwt verifier, anything else to the bearer verifier. With only one of them
 * configured, every value goes to it (which refuses the other shape with its own code).
 */
export function createAuthorizationStage(verifiers: { readonly bearer?: CredentialVerifier; readonly jwt?: CredentialVerifier }): CredentialStage {
  const { bearer, jwt } = verifiers;
  const forJwt = jwt ?? bearer;
  const forSecret = bearer ?? jwt;
  if (!forJwt || !forSecret) throw new Error('createAuthorizationStage needs a bearer or a jwt verifier');
  const all = [bearer, jwt].filter((v): v is CredentialVerifier => v !== undefined);
  return {
    name: 'authorization',
    needs: [...new Set(all.flatMap((v) => v.needs))],
    provides: ['pop'],
    run(ctx: RequestContext) {
      const credential = readBearerCredential(ctx.req);
      return (isJwtShaped(credential) ? forJwt : forSecret).verify(credential, ctx);
    },
    reload: (trigger) => all.flatMap((v) => v.reload(trigger)),
    close: () => {
      for (const v of all) v.close();
    },
  };
}
