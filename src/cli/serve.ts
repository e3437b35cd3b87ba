/** `replguard serve -c FILE`: runs the role the config names until SIGTERM (drain) or a second SIGTERM (at once). */
import process from 'node:process';
import { createAuditLog } from '../audit/audit-log.ts';
import { loadConfig } from '../config/load.ts';
import { createOperationalLog } from '../log/operational.ts';
import { startGuard } from '../server/guard.ts';
import { parseCommandArgs, required } from './args.ts';

export const usage = 'serve -c FILE                                 run the guard (role: backup)';

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('serve', argv, { config: { type: 'string', short: 'c' } });
  const loaded = loadConfig(required('serve', 'config', values.config));
  const log = createOperationalLog(loaded.config.log.level);
  for (const w of loaded.warnings) log.warn({ key: w.path }, w.message);
  const audit = createAuditLog();
  // SIGHUP re-reads the config file, the TLS material and the credential files (tokens, JWT
  // keys, revoked ids) and never exits; it is caught from here on so that an early one cannot
  // end the process (Node's default).
  let reload: ((trigger: 'SIGHUP') => void) | undefined;
  process.on('SIGHUP', () => reload?.('SIGHUP'));
  const guard = await startGuard(loaded.config, { audit, log, source: loaded });
  reload = guard.reload;
  // The "ready" line (operational log, stderr) names the bound ports, which matter with port 0.
  log.info({ port: guard.port, admin_port: guard.adminPort, config: loaded.file }, 'ready');

  return new Promise<number>((resolve) => {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      signals += 1;
      if (signals > 1) {
        log.warn({ signal }, 'second signal: exiting without waiting');
        audit.flush();
        resolve(0);
        return;
      }
      log.info({ signal }, 'shutting down');
      guard.shutdown().then(() => resolve(0), (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        resolve(1);
      });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
