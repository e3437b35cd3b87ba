/** Whether a host name or address stays on this machine (127.0.0.0/8, ::1, localhost). */
import { isIP } from 'node:net';

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1';
  return false;
}
