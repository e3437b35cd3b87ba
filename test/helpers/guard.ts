/**
 * Runs the real program (`node dist/main.js serve -c FILE`) on port 0 with a config written
 * for the test, reads the bound ports from its "ready" line, and collects its audit events
 * (NDJSON on stdout) for assertions on parsed records.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import YAML from 'yaml';
import type { TestPki } from './pki.ts';
import { productCommand } from './runtime.ts';

export const ROOT = join(import.meta.dirname, '..', '..');
export const MAIN = join(ROOT, 'dist', 'main.js');

export type AuditRecord = Record<string, any>;

export interface GuardProcess {
  port: number;
  adminPort: number;
  child: ChildProcess;
  configFile: string;
  /** Audit events so far (parsed stdout lines). */
  audit(): AuditRecord[];
  /** Operational log lines so far (parsed stderr lines). */
  operational(): AuditRecord[];
  /** Resolves when `count` audit events have been written (or rejects after `ms`). */
  waitForAudit(count: number, ms?: number): Promise<AuditRecord[]>;
  /** Resolves with the first `count` audit events matching `pred` once there are that many. */
  waitForEvents(pred: (e: AuditRecord) => boolean, count: number, ms?: number): Promise<AuditRecord[]>;
  /** Everything the process wrote so far, from its first byte, as text (for scans of every log line). */
  output(): { stdout: string; stderr: string };
  /** SIGTERM and wait for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Limits for tests that are not about limits: they send many refused requests as one POP on
 * purpose, which the product's defaults (a ban after 10 failures, 60 requests a minute) would
 * rightly cut off. A test that passes `limits` (even `{}` for the product defaults) gets exactly that.
 */
export const TEST_LIMITS = { ban_after_failures: 100_000, rate_per_minute: 100_000, address_rate_per_minute: 100_000 };

/** The minimal valid guard config for a test PKI; override any part. */
export function baseConfig(pki: TestPki, upstreamUrl: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    limits: TEST_LIMITS,
    pop_id: 'zurich-01',
    role: 'backup',
    listen: { host: '127.0.0.1', port: 0 },
    tls: { cert_file: pki.server.cert, key_file: pki.server.key, client_ca_file: pki.caFile },
    upstream: { url: upstreamUrl, timeout: '2s' },
    routes: [{ method: 'POST', path: '/api/replication/apply' }],
    auth: { methods: ['mtls'] },
    peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' } }],
    admin: { host: '127.0.0.1', port: 0 },
    shutdown_timeout: '10s',
    ...overrides,
  };
}

export function writeConfig(config: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'replguard-cfg-'));
  const file = join(dir, 'replguard.yaml');
  writeFileSync(file, YAML.stringify(config));
  return file;
}

export async function startGuard(config: Record<string, unknown>, options: { command?: string[] } = {}): Promise<GuardProcess> {
  const configFile = writeConfig(config);
  const command = options.command ?? productCommand();
  const child = spawn(command[0]!, [...command.slice(1), 'serve', '-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  const audit: AuditRecord[] = [];
  const operational: AuditRecord[] = [];
  const waiters: Array<() => void> = [];
  const raw = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
  child.stdout!.on('data', (d: Buffer) => raw.stdout.push(d));
  child.stderr!.on('data', (d: Buffer) => raw.stderr.push(d));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    audit.push(JSON.parse(line) as AuditRecord);
    for (const w of waiters.splice(0)) w();
  });
  let stderrText = '';
  const ready = new Promise<{ port: number; adminPort: number }>((resolve, reject) => {
    createInterface({ input: child.stderr! }).on('line', (line) => {
      stderrText += `${line}\n`;
      try {
        const rec = JSON.parse(line) as AuditRecord;
        operational.push(rec);
        if (rec.message === 'ready') resolve({ port: rec.port as number, adminPort: rec.admin_port as number });
      } catch {
        // not JSON (e.g. a ConfigError report)
      }
    });
    child.once('exit', (code) => reject(new Error(`guard exited with ${code} before ready:\n${stderrText}`)));
  });
  const { port, adminPort } = await ready;
  return {
    port,
    adminPort,
    child,
    configFile,
    audit: () => audit,
    operational: () => operational,
    output: () => ({ stdout: Buffer.concat(raw.stdout).toString('utf8'), stderr: Buffer.concat(raw.stderr).toString('utf8') }),
    waitForAudit(count, ms = 5000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${audit.length} audit events after ${ms} ms, wanted ${count}`)), ms);
        const check = () => {
          if (audit.length >= count) {
            clearTimeout(timer);
            resolve(audit);
          } else waiters.push(check);
        };
        check();
      });
    },
    waitForEvents(pred, count, ms = 5000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${audit.filter(pred).length} matching audit events after ${ms} ms, wanted ${count}`)), ms);
        const check = () => {
          const found = audit.filter(pred);
          if (found.length >= count) {
            clearTimeout(timer);
            resolve(found.slice(0, count));
          } else waiters.push(check);
        };
        check();
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null) return child.exitCode;
      child.kill(signal);
      const [code] = (await once(child, 'exit')) as [number | null];
      return code;
    },
  };
}

/** Runs a CLI command to completion. */
export function runCli(args: string[], options: { command?: string[] } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const command = options.command ?? productCommand();
  const child = spawn(command[0]!, [...command.slice(1), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}
