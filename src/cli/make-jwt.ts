/**
 * `replguard make-jwt`: signs a JWT that a guard accepts, or (`--claim`) prints the claim set for
 * an external provider to sign. Modelled on the replicator's command of the same name.
 *
 *   make-jwt -k KEY --pop ID --audience ID --route METHOD:PATH [--route ...] [--ttl 10m]
 *            [--issuer replguard] [--alg PS256] [--bind-cert CERT] [-o FILE] [--claim]
 *
 * The key checks and the signing are auth/jwt-mint.ts, shared with the signer role.
 */
import { readFileSync } from 'node:fs';
import { buildClaimSet, parseRouteSpec } from '../auth/jwt-claims.ts';
import { certificateThumbprint, MintKeyError, mintJwt, parseMintKey, type MintKey } from '../auth/jwt-mint.ts';
import { ConfigError, type ConfigProblem } from '../config/errors.ts';
import { isPopId, POP_ID_RULE } from '../config/pop-id.ts';
import { parseDuration } from '../config/units.ts';
import { flagArg, parseCommandArgs, stringArg, stringsArg } from './args.ts';
import { writeSecretFile } from './secret-file.ts';

export async function run(argv: string[]): Promise<number> {
  const args = parseCommandArgs('make-jwt', argv);
  const values = {
    key: stringArg(args, 'key'),
    pop: stringArg(args, 'pop'),
    audience: stringArg(args, 'audience'),
    route: stringsArg(args, 'route'),
    ttl: stringArg(args, 'ttl'),
    issuer: stringArg(args, 'issuer'),
    alg: stringArg(args, 'alg'),
    'bind-cert': stringArg(args, 'bind-cert'),
    out: stringArg(args, 'out'),
    claim: flagArg(args, 'claim'),
  };
  const problems: ConfigProblem[] = [];
  const problem = (flag: string, message: string) => problems.push({ path: `replguard make-jwt ${flag}`, message });

  if (!values.pop || !isPopId(values.pop)) problem('--pop', `the source POP id is required: ${POP_ID_RULE}`);
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
      certThumbprint = certificateThumbprint(readFileSync(values['bind-cert']));
    } catch (err) {
      problem('--bind-cert', `${values['bind-cert']}: not a PEM certificate (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }

  let mintKey: MintKey | undefined;
  if (!values.claim) {
    if (!values.key) problem('--key', 'the private key to sign with is required (or pass --claim to print the claims only)');
    else {
      let pem: Buffer | undefined;
      try {
        pem = readFileSync(values.key);
      } catch (err) {
        problem('--key', `${values.key}: not an unencrypted PEM private key (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      }
      if (pem !== undefined) {
        try {
          mintKey = parseMintKey(pem, values.alg);
        } catch (err) {
          if (!(err instanceof MintKeyError)) throw err;
          problem(`--${err.subject}`, err.subject === 'alg' ? err.message : `${values.key}: ${err.message}`);
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
  const token = await mintJwt(mintKey!, claims);
  if (values.out === undefined) {
    process.stdout.write(`${token}\n`);
  } else {
    writeSecretFile(values.out, `${token}\n`);
    process.stdout.write(`${values.out}: token for ${values.pop}, jti ${String(claims.jti)}, expires ${new Date((claims.exp as number) * 1000).toISOString()}\n`);
  }
  return 0;
}
