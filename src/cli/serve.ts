/** `replguard serve -c FILE`: runs the role the config names until SIGTERM (drain) or a second SIGTERM (at once). */
import process from 'node:process';
import { createAuditLog } from '../audit/audit-log.ts';
import { loadRoleConfig } from './role-config.ts';
import { createOperationalLog } from '../log/operational.ts';
import { createMetrics } from '../metrics/metrics.ts';
import { startGuard, type Guard } from '../guard/guard.ts';
import { startSigner } from '../signer/signer.ts';
import { parseCommandArgs, stringArg } from './args.ts';

export async function run(argv: string[]): Promise<number> {
  const args = parseCommandArgs('serve', argv);
  // The role comes from the config file only (docs/security.md, findings): never from the environment or a flag.
  const loaded = loadRoleConfig(stringArg(args, 'config')!);
  const log = createOperationalLog(loaded.config.log.level);
  for (const w of loaded.warnings) log.warn({ key: w.path }, w.message);
  // SIGHUP re-reads the config file, the TLS material and the credential files (tokens, JWT
  // keys, revoked ids; the signer's keys) and never exits; it is caught from here on so that an
  // early one cannot end the process (Node's default).
  let reload: ((trigger: 'SIGHUP') => void) | undefined;
  process.on('SIGHUP', () => reload?.('SIGHUP'));
  // The guard's audit destinations and metrics come from its config; the signer (role: primary)
  // writes its audit events to stdout and serves only health on its admin listener.
  const settings = loaded.role === 'backup' ? loaded.config.audit : undefined;
  const metrics = loaded.role === 'backup' ? createMetrics(loaded.config) : undefined;
  const audit = createAuditLog(settings, {
    onError(err, destination) {
      metrics?.countAuditError(destination);
      log.error({ err, destination }, 'writing the audit trail failed');
    },
  });
  // logrotate renames the file, then signals: later events go to a new file of the old name.
  process.on('SIGUSR2', () => {
    const file = settings?.file;
    if (file === undefined) return;
    audit.reopen().then(
      () => log.info({ file }, 'audit file reopened'),
      (err: unknown) => log.error({ err, file }, 'reopening the audit file failed; events still go to the previous file'),
    );
  });
  await audit.ready();
  // The guard (role: backup) or the signer (role: primary): both serve, reload and drain alike.
  const role: Pick<Guard, 'port' | 'adminPort' | 'reload' | 'shutdown'> = loaded.role === 'primary'
    ? await startSigner(loaded.config, { audit, log })
    : await startGuard(loaded.config, { audit, log, metrics, source: loaded });
  reload = role.reload;
  // What start-up audited (the registry in force, a new epoch…) is written before the guard says
  // it is ready, not up to a batch later.
  audit.flush();
  // The "ready" line (operational log, stderr) names the bound ports, which matter with port 0.
  log.info({ role: loaded.role, port: role.port, admin_port: role.adminPort, config: loaded.file }, 'ready');

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
      role.shutdown().then(
        // The audit stream ends once its writes in flight are done: exiting then loses none.
        () => audit.close().then(() => resolve(0)),
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          audit.flush();
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
