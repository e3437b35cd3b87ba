/**
 * The signature part of a guard config: keys per peer exactly when signatures are checked (and
 * each key file read as the signature stage reads it); replay protection needs signatures.
 */
import type { Validation } from '../config/errors.ts';
import type { Config } from '../config/schema.ts';
import { readPeerSigningKeys } from './keys.ts';

export function checkSignatureConfig(config: Readonly<Config>): Validation {
  const problems: Validation['problems'] = [];
  const signed = config.auth.methods.includes('signature');
  config.peers.forEach((peer, i) => {
    if (signed && peer.signing_keys.length === 0) {
      problems.push({ path: `peers[${i}].signing_keys`, message: 'auth.methods lists signature: give this peer at least one key file (whsec_, whpk_ or PEM), or it can never be admitted' });
    }
    if (!signed && peer.signing_keys.length > 0) {
      problems.push({ path: `peers[${i}].signing_keys`, message: 'keys are listed but auth.methods does not list signature, so they would not be checked; add signature to auth.methods or remove them' });
    }
  });
  if (config.replay !== undefined && !signed) {
    problems.push({ path: 'replay', message: 'replay protection needs signatures (an unsigned timestamp or nonce can be forged); add signature to auth.methods or remove replay' });
  }
  const sequence = config.replay?.sequence;
  if (sequence !== undefined && sequence.retention <= sequence.gap_window) {
    problems.push({ path: 'replay.sequence.retention', message: 'retention must be longer than gap_window, or an epoch would be forgotten before its gaps are reported' });
  }
  if (signed) problems.push(...readPeerSigningKeys(config.peers).problems);
  return { problems, warnings: [] };
}
