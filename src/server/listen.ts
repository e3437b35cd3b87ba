/** Binding a listener, with an operator-facing error naming the config key when it fails. */
import { once } from 'node:events';
import type { Server } from 'node:net';
import { ConfigError } from '../config/errors.ts';

export async function listenOrExplain(server: Server, host: string, port: number, keyPath: string): Promise<void> {
  server.listen(port, host);
  try {
    await once(server, 'listening');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const hint = code === 'EADDRINUSE' ? 'another process uses it; stop it or pick another port'
      : code === 'EACCES' ? 'ports below 1024 need privileges; pick a port above 1024'
      : code === 'EADDRNOTAVAIL' ? 'this host has no such address'
      : String((err as Error).message);
    throw new ConfigError([{ path: keyPath, message: `cannot listen on ${host}:${port}: ${code ?? 'error'}; ${hint}` }]);
  }
}
