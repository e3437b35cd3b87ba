/**
 * The keys that rate counters, failure counters and bans are kept under: `pop:<id>` for an
 * authenticated POP, `addr:<address>` for a client address. An IPv6 client counts per /64,
 * the smallest block a single site is normally given: keying single IPv6 addresses would let
 * one host rotate through 2^64 of them to dodge its limits and bans.
 */
import { isIPv6 } from 'node:net';
import { isPopId } from '../config/pop-id.ts';

export const POP_PREFIX = 'pop:';
export const ADDRESS_PREFIX = 'addr:';

export function popKey(pop: string): string {
  return `${POP_PREFIX}${pop}`;
}

export function addressKey(address: string): string {
  const plain = address.split('%')[0]!; // drop an IPv6 zone id
  if (!isIPv6(plain)) return `${ADDRESS_PREFIX}${plain}`;
  const groups = expandIPv6(plain);
  return `${ADDRESS_PREFIX}${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}

/** addressKey() of a connection's client, worked out once per connection (it cannot change). */
const connectionKeys = new WeakMap<{ readonly remoteAddress: string }, string>();
export function connectionAddressKey(conn: { readonly remoteAddress: string }): string {
  let key = connectionKeys.get(conn);
  if (key === undefined) {
    key = addressKey(conn.remoteAddress);
    connectionKeys.set(conn, key);
  }
  return key;
}

export function isPopKey(key: string): boolean {
  return key.startsWith(POP_PREFIX);
}

/** A ban key as an operator may write it (`pop:calgary-01`, `addr:203.0.113.9`), or undefined. */
export function parseBanKey(key: string): string | undefined {
  if (key.startsWith(POP_PREFIX) && isPopId(key.slice(POP_PREFIX.length))) return key;
  if (key.startsWith(ADDRESS_PREFIX) && /^[0-9A-Fa-f:./]{2,60}$/.test(key.slice(ADDRESS_PREFIX.length))) return key;
  return undefined;
}

/** The eight 16-bit groups of a valid IPv6 address (an embedded IPv4 tail counts as two). */
function expandIPv6(address: string): number[] {
  let text = address;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const parse = (part: string | undefined) => (part ? part.split(':').map((g) => parseInt(g, 16)) : []);
  const left = parse(head);
  const right = parse(tail);
  const zeros = tail === undefined ? [] : new Array<number>(8 - left.length - right.length).fill(0);
  return [...left, ...zeros, ...right];
}
