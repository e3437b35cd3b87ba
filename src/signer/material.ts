/**
 * The signer's file-backed material, read and checked as one set: the signing keys, the
 * credential it attaches (bearer secret, JWT signing key or a JWT made elsewhere), and the TLS
 * client material (the CA the guard's certificate must chain to, this POP's client certificate
 * and key). The same loader runs for `check-config`, at start-up and at every reload (a reload
 * that fails keeps the material in force: reload/source.ts).
 *
 * Every loader it calls is the guard's own: signing keys from replay/keys.ts, the bearer file
 * from auth/bearer.ts, JWT keys from auth/jwt-mint.ts, the JWS policy from auth/jwt-header.ts.
 */
import { createHash, createPrivateKey, type X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isJwtShaped } from '../auth/authorization.ts';
import { readExpiringTokenFile } from '../auth/bearer.ts';
import { checkJwsPolicy, MAX_TOKEN_BYTES } from '../auth/jwt-header.ts';
import { certificateThumbprint, MintKeyError, parseMintKey, type MintKey } from '../auth/jwt-mint.ts';
import { parseJsonObject } from '../auth/strict-json.ts';
import { ConfigError, type ConfigProblem } from '../config/errors.ts';
import { checkReadableFile, checkSecretFile } from '../config/files.ts';
import type { PrimaryConfig } from '../config/primary-schema.ts';
import { Rejection } from '../pipeline/reasons.ts';
import type { Loaded } from '../reload/source.ts';
import { readSignKeyFile } from '../replay/keys.ts';
import type { SignKey } from '../replay/signature.ts';
import { parseCertificates } from '../tls/material.ts';

/** The `Authorization: Bearer` credential attached to each attempt. */
export type SignerCredential =
  | { readonly kind: 'none' }
  | { readonly kind: 'bearer'; readonly token: string; readonly notAfter?: number | undefined }
  | { readonly kind: 'jwt'; readonly key: MintKey; readonly certThumbprint: string | undefined }
  | { readonly kind: 'jwt-static'; readonly token: string; readonly notAfter: number };

/**
 * When a credential stops being accepted (epoch ms): a bearer secret's not_after, a JWT made
 * elsewhere's exp. Checked before every attempt (signer.ts), not only at load: a signer that runs
 * past it sends nothing rather than a stream of refusals.
 */
export function credentialNotAfter(credential: SignerCredential): number | undefined {
  return credential.kind === 'bearer' || credential.kind === 'jwt-static' ? credential.notAfter : undefined;
}

/** What `tls.connect` needs to reach the guard. */
export interface ClientTlsMaterial {
  readonly ca: string;
  readonly cert: string | undefined;
  readonly key: string | undefined;
  /** Identifies the TLS material: a change means new connections need a new agent. */
  readonly fingerprint: string;
}

export interface SignerMaterial {
  readonly signKeys: readonly SignKey[];
  readonly credential: SignerCredential;
  readonly tls: ClientTlsMaterial;
}

type Config = Pick<PrimaryConfig, 'pop_id' | 'backup' | 'client_tls' | 'credentials' | 'signing_keys'>;

/** Every file the material comes from (watched for changes). */
export function signerMaterialPaths(config: Config): string[] {
  const c = config.credentials;
  return [
    config.backup.ca_file,
    ...(config.client_tls ? [config.client_tls.cert_file, config.client_tls.key_file] : []),
    ...(c.token_file !== undefined ? [c.token_file] : []),
    ...(c.jwt !== undefined ? [c.jwt.key_file] : []),
    ...(c.jwt_token_file !== undefined ? [c.jwt_token_file] : []),
    ...config.signing_keys,
  ];
}

/** Reads and checks everything, all or nothing. Throws a ConfigError with every problem. */
export function loadSignerMaterial(config: Config, now: number = Date.now()): Loaded<SignerMaterial> {
  const problems: ConfigProblem[] = [];
  const hash = createHash('sha256');

  const signKeys: SignKey[] = [];
  config.signing_keys.forEach((file, i) => {
    const result = readSignKeyFile(file, `signing_keys[${i}]`);
    if ('problem' in result) problems.push(result.problem);
    else {
      signKeys.push(result.key);
      hash.update(`sign:${file}:`).update(readFileSync(file));
    }
  });

  const tls = loadClientTls(config, now, problems);
  hash.update(`tls:${tls?.fingerprint ?? ''}`);
  const credential = loadCredential(config, now, problems);
  if (credential?.kind === 'bearer' || credential?.kind === 'jwt-static') hash.update(`cred:${credential.kind}:`).update(credential.token);
  if (credential?.kind === 'jwt') hash.update(`cred:jwt:${credential.key.kid}:${credential.key.alg}:${credential.certThumbprint ?? ''}`);

  if (problems.length > 0 || !tls || !credential) throw new ConfigError(problems);
  return { value: { signKeys, credential, tls }, fingerprint: hash.digest('hex') };
}

function loadClientTls(config: Config, now: number, problems: ConfigProblem[]): ClientTlsMaterial | undefined {
  const before = problems.length;
  const { ca_file: caFile } = config.backup;
  let ca: string | undefined;
  const unreadable = checkReadableFile(caFile, 'backup.ca_file');
  if (unreadable) problems.push(unreadable);
  else {
    ca = readFileSync(caFile, 'utf8');
    try {
      for (const cert of parseCertificates(ca)) {
        if (!cert.ca) problems.push({ path: 'backup.ca_file', message: `${caFile}: "${cert.subject.replace(/\n/g, ', ')}" is not a CA certificate` });
      }
    } catch (err) {
      problems.push({ path: 'backup.ca_file', message: `${caFile}: not a PEM CA bundle (${(err as Error).message})` });
    }
  }

  let cert: string | undefined;
  let key: string | undefined;
  if (config.client_tls) {
    const { cert_file: certFile, key_file: keyFile } = config.client_tls;
    const certProblem = checkReadableFile(certFile, 'client_tls.cert_file');
    if (certProblem) problems.push(certProblem);
    else cert = readFileSync(certFile, 'utf8');
    const keyProblem = checkSecretFile(keyFile, 'client_tls.key_file');
    if (keyProblem) problems.push(keyProblem);
    else key = readFileSync(keyFile, 'utf8');
    let leaf: X509Certificate | undefined;
    if (cert !== undefined) {
      try {
        leaf = parseCertificates(cert)[0];
      } catch (err) {
        problems.push({ path: 'client_tls.cert_file', message: `${certFile}: not a PEM certificate chain (${(err as Error).message})` });
      }
    }
    if (leaf) {
      if (Date.parse(leaf.validTo) <= now) problems.push({ path: 'client_tls.cert_file', message: `${certFile}: the client certificate expired on ${leaf.validTo}; renew it` });
      if (Date.parse(leaf.validFrom) > now) problems.push({ path: 'client_tls.cert_file', message: `${certFile}: the client certificate is not valid until ${leaf.validFrom}` });
    }
    if (key !== undefined) {
      try {
        if (leaf && !leaf.checkPrivateKey(createPrivateKey(key))) {
          problems.push({ path: 'client_tls.key_file', message: `${keyFile} does not match the certificate in client_tls.cert_file` });
        }
      } catch (err) {
        problems.push({ path: 'client_tls.key_file', message: `${keyFile}: not an unencrypted PEM private key (${(err as Error).message})` });
      }
    }
  }
  if (problems.length > before || ca === undefined) return undefined;
  const fingerprint = createHash('sha256').update(ca).update('\0').update(cert ?? '').update('\0').update(key ?? '').digest('hex');
  return { ca, cert, key, fingerprint };
}

function loadCredential(config: Config, now: number, problems: ConfigProblem[]): SignerCredential | undefined {
  const c = config.credentials;
  if (c.token_file !== undefined) {
    // The same file format as the guard's token_files, so an optional `not_after:` line: an
    // expired secret stops start-up and is refused at a reload (the old material stays).
    const read = readExpiringTokenFile(c.token_file, 'credentials.token_file');
    if ('problem' in read) {
      problems.push(read.problem);
      return undefined;
    }
    if (read.secret === undefined) {
      problems.push({ path: 'credentials.token_file', message: `${c.token_file} is empty; write this POP's secret into it (\`replguard gen-token --out FILE\`)` });
      return undefined;
    }
    if (read.notAfter !== undefined && read.notAfter <= now) {
      problems.push({ path: 'credentials.token_file', message: `${c.token_file}: the secret expired at ${new Date(read.notAfter).toISOString()} (its not_after line); write a new one (\`replguard gen-token --out FILE\`) and give it to the backup's guard too` });
      return undefined;
    }
    return { kind: 'bearer', token: read.secret, notAfter: read.notAfter };
  }
  if (c.jwt !== undefined) {
    const keyPath = 'credentials.jwt.key_file';
    const unsafe = checkSecretFile(c.jwt.key_file, keyPath);
    if (unsafe) {
      problems.push(unsafe);
      return undefined;
    }
    let key: MintKey;
    try {
      key = parseMintKey(readFileSync(c.jwt.key_file), c.jwt.alg);
    } catch (err) {
      if (!(err instanceof MintKeyError)) throw err;
      problems.push({ path: err.subject === 'alg' ? 'credentials.jwt.alg' : keyPath, message: `${c.jwt.key_file}: ${err.message}` });
      return undefined;
    }
    let certThumbprint: string | undefined;
    if (c.jwt.bind_cert) {
      if (!config.client_tls) {
        problems.push({ path: 'credentials.jwt.bind_cert', message: 'binding a token to the client certificate needs one: configure client_tls' });
        return undefined;
      }
      try {
        certThumbprint = certificateThumbprint(readFileSync(config.client_tls.cert_file));
      } catch {
        return undefined; // client_tls.cert_file's own problem is reported by loadClientTls
      }
    }
    return { kind: 'jwt', key, certThumbprint };
  }
  if (c.jwt_token_file !== undefined) {
    const token = readStaticJwt(config, c.jwt_token_file, now, problems);
    return token === undefined ? undefined : { kind: 'jwt-static', token: token.token, notAfter: token.exp * 1000 };
  }
  return { kind: 'none' };
}

/**
 * A JWT made elsewhere: checked for what the guard will check without its keys (shape, header
 * policy, `sub` = this POP, `aud` = the backup, not expired), so a wrong file is found here,
 * not as a stream of refusals at the guard.
 */
function readStaticJwt(config: Config, file: string, now: number, problems: ConfigProblem[]): { token: string; exp: number } | undefined {
  const keyPath = 'credentials.jwt_token_file';
  const unsafe = checkSecretFile(file, keyPath);
  if (unsafe) {
    problems.push(unsafe);
    return undefined;
  }
  const token = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  const problem = (message: string) => {
    problems.push({ path: keyPath, message: `${file}: ${message}` });
    return undefined;
  };
  if (token.length > MAX_TOKEN_BYTES || !isJwtShaped(token)) return problem('not a JWT (make one with `replguard make-jwt -o FILE`)');
  let claims: Record<string, unknown>;
  try {
    const parsed = parseJsonObject(checkJwsPolicy(token).payload);
    if (!parsed.ok) return problem(`the claim set: ${parsed.problem}`);
    claims = parsed.value;
  } catch (err) {
    if (err instanceof Rejection) return problem(`the guard would refuse it (${err.reason}: ${err.detail ?? ''})`);
    throw err;
  }
  if (claims.sub !== config.pop_id) return problem(`its sub is not this POP (${config.pop_id})`);
  const aud = claims.aud;
  if (!(aud === config.backup.id || (Array.isArray(aud) && aud.includes(config.backup.id)))) return problem(`its aud is not the backup (${config.backup.id})`);
  if (typeof claims.exp !== 'number' || claims.exp * 1000 <= now) return problem('it has expired (or has no exp); make a new one');
  return { token, exp: claims.exp };
}
