/**
 * What a POP id is: the one definition, used by the config schema, the ban keys
 * (store/client-key.ts) and the command line (make-jwt, dev-pki). An id names a peer in
 * metrics labels, ban keys and the `x-replguard-source-pop` header, so it is short and plain.
 */
export const POP_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** The rule in words, for operator errors. */
export const POP_ID_RULE = 'a POP id is 1 to 63 characters of letters, digits, ".", "_" or "-", starting with a letter or digit';

export function isPopId(text: string): boolean {
  return POP_ID_PATTERN.test(text);
}
