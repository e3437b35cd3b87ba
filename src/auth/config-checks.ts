/**
 * The credential part of a guard config: bearer and JWT settings against auth.methods, and the
 * credential files themselves (token strength, key types and sizes, the revoked-id list), read by
 * the same loaders that run at every reload.
 */
import { collectProblems, type Validation } from '../config/errors.ts';
import type { Config } from '../config/schema.ts';
import { loadTokenSet } from './bearer.ts';
import { loadKeySet, loadRevokedIds } from './jwt-keys.ts';

export function checkCredentialConfig(config: Readonly<Config>): Validation {
  const problems: Validation['problems'] = [];
  const warnings: Validation['warnings'] = [];
  const methods = config.auth.methods;
  const bearer = methods.includes('bearer');
  const jwt = methods.includes('jwt');
  if (!methods.includes('mtls') && !bearer && !jwt) {
    // A signature is checked with the keys of the POP a credential named: something must name it.
    problems.push({ path: 'auth.methods', message: 'no method names the POP: list mtls, bearer or jwt (signature checks a request against the keys of the POP they name)' });
  }

  if (bearer) {
    if (!jwt) {
      config.peers.forEach((peer, i) => {
        if (peer.token_files.length === 0) problems.push({ path: `peers[${i}].token_files`, message: 'auth.methods lists bearer: list at least one token file (make one with `replguard gen-token --out FILE`)' });
      });
    }
    collectProblems(problems, () => loadTokenSet(config.peers));
  } else {
    config.peers.forEach((peer, i) => {
      if (peer.token_files.length > 0) warnings.push({ path: `peers[${i}].token_files`, message: 'unused: auth.methods does not list bearer' });
    });
  }

  const settings = config.auth.jwt;
  if (jwt && !settings) {
    problems.push({ path: 'auth.jwt', message: 'auth.methods lists jwt: configure auth.jwt.public_keys (and issuer, if not "replguard")' });
  }
  if (!jwt && settings) warnings.push({ path: 'auth.jwt', message: 'unused: auth.methods does not list jwt' });
  if (jwt && settings) {
    if (settings.require_cert_binding && !methods.includes('mtls')) {
      problems.push({ path: 'auth.jwt.require_cert_binding', message: 'binding a token to the client certificate needs one: add mtls to auth.methods' });
    }
    collectProblems(problems, () => loadKeySet(settings, new Set(config.peers.map((p) => p.id))));
    collectProblems(problems, () => loadRevokedIds(settings.revoked_ids_file));
  }
  return { problems, warnings };
}
