/**
 * `replguard make-jwt`: signs a JWT that a guard accepts, or (`--claim`) prints the claim set for
 * an external provider to sign. Modelled on the replicator's command of the same name.
 *
 *   make-jwt -k KEY --pop ID --audience ID --route METHOD:PATH [--route ...] [--ttl 10m]
 *            [--issuer replguard] [--alg PS256] [--bind-cert CERT] [-o FILE] [--claim]
 *
 * The algorithm follows the key (RSA: RS256 unless --alg says PS* or another RS*; P-256: ES256;
 * P-384: ES384; P-521: ES512; Ed25519: EdDSA), and the key must pass the checks the guard makes
 * (RSA at least 2048 bits with exponent 65537). The header's kid is the RFC 7638 thumbprint of
 * the public key, which is also what the guard uses for a PEM key.
 */
import { createHash, createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SignJWT } from 'jose';
import { buildClaimSet, parseRouteSpec } from '../auth/jwt-claims.ts';
import { checkVerificationJwk, jwkThumbprint } from '../auth/jwt.ts';
import { ConfigError, type ConfigProblem } from '../config/errors.ts';
import { JWT_ALGORITHMS, type JwtAlgorithm } from '../config/schema.ts';
import { parseDuration } from '../config/units.ts';
import { parseCommandArgs } from './args.ts';
import { writeSecretFile } from './secret-file.ts';

export const usage = 'make-jwt -k KEY --pop ID --audience ID --route METHOD:PATH [--ttl 10m] [--bind-cert CERT] [-o FILE] [--claim]   sign a JWT (or print its claims)';

const POP_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

function algorithmFor(key: KeyObject, requested: string | undefined): JwtAlgorithm | string {
  const type = key.asymmetricKeyType;
  if (type === 'rsa') return requested ?? 'RS256';
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const alg = curve === 'prime256v1' ? 'ES256' : curve === 'secp384r1' ? 'ES384' : curve === 'secp521r1' ? 'ES512' : `an EC key on ${curve}`;
    return requested ?? alg;
  }
  if (type === 'ed25519') return requested ?? 'EdDSA';
  return `a ${type} key`;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('make-jwt', argv, {
    key: { type: 'string', short: 'k' },
    pop: { type: 'string' },
    audience: { type: 'string', short: 'a' },
    route: { type: 'string', short: 'r', multiple: true },
    ttl: { type: 'string', default: '10m' },
    issuer: { type: 'string', default: 'replguard' },
    alg: { type: 'string' },
    'bind-cert': { type: 'string' },
    out: { type: 'string', short: 'o' },
    claim: { type: 'boolean', default: false },
  });
  const problems: ConfigProblem[] = [];
  const problem = (flag: string, message: string) => problems.push({ path: `replguard make-jwt ${flag}`, message });

  if (!values.pop || !POP_ID.test(values.pop)) problem('--pop', 'the source POP id is required (letters, digits, ".", "_", "-"; up to 63)');
  if (!values.audience) problem('--audience', "the guard's pop_id is required");
  const routes = (values.route ?? []).map((spec) => {
    const route = parseRouteSpec(spec);
    if (route === undefined) problem('--route', `"${spec}" is not METHOD:PATH with a normalised path, e.g. POST:/api/replication/apply`);
    return route;
  });
  if (routes.length === 0) problem('--route', 'at least one is required: the token may call only the routes it lists');
  const ttlMs = parseDuration(values.ttl ?? '');
  if (ttlMs === undefined || ttlMs < 1000) problem('--ttl', `"${values.ttl}" is not a duration of at least 1s, e.g. 10m`);

  let certThumbprint: string | undefined;
  if (values['bind-cert'] !== undefined) {
    try {
      const cert = new X509Certificate(readFileSync(values['bind-cert']));
      certThumbprint = createHash('sha256').update(cert.raw).digest('base64url');
    } catch (err) {
      problem('--bind-cert', `${values['bind-cert']}: not a PEM certificate (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }

  let privateKey: KeyObject | undefined;
  let alg: JwtAlgorithm | undefined;
  let kid: string | undefined;
  if (!values.claim) {
    if (!values.key) problem('--key', 'the private key to sign with is required (or pass --claim to print the claims only)');
    else {
      try {
        privateKey = createPrivateKey(readFileSync(values.key));
      } catch (err) {
        problem('--key', `${values.key}: not an unencrypted PEM private key (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      }
    }
    if (privateKey) {
      const chosen = algorithmFor(privateKey, values.alg);
      if (!(JWT_ALGORITHMS as readonly string[]).includes(chosen)) problem('--alg', `${chosen} cannot sign a token the guard accepts (${JWT_ALGORITHMS.join(', ')})`);
      else {
        alg = chosen as JwtAlgorithm;
        const publicKey = createPublicKey(privateKey);
        try {
          checkVerificationJwk(publicKey.export({ format: 'jwk' }) as Record<string, unknown>, alg);
          kid = jwkThumbprint(publicKey);
        } catch (err) {
          problem('--key', `${values.key}: ${(err as Error).message}`);
        }
      }
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const claims = buildClaimSet({
    issuer: values.issuer!,
    pop: values.pop!,
    audience: values.audience!,
    routes: routes as string[],
    ttlSeconds: Math.round(ttlMs! / 1000),
    now: Math.floor(Date.now() / 1000),
    ...(certThumbprint !== undefined ? { certThumbprint } : {}),
  });
  if (values.claim) {
    process.stdout.write(`${JSON.stringify(claims, null, 2)}\n`);
    return 0;
  }
  const token = await new SignJWT(claims).setProtectedHeader({ alg: alg!, typ: 'JWT', kid: kid! }).sign(privateKey!);
  if (values.out === undefined) {
    process.stdout.write(`${token}\n`);
  } else {
    writeSecretFile(values.out, `${token}\n`);
    process.stdout.write(`${values.out}: token for ${values.pop}, jti ${String(claims.jti)}, expires ${new Date((claims.exp as number) * 1000).toISOString()}\n`);
  }
  return 0;
}
