/**
 * What every role's /metrics carries besides its own: prom-client's default process metrics
 * (CPU, resident memory, heap, event-loop lag, GC, open file descriptors) and
 * `replguard_build_info`. The defaults are prom-client's own collectors; they were checked to
 * produce values under Deno 2 as well as Node (test/e2e/metrics-docs.test.ts scrapes both), where
 * `nodejs_version_info` reports Deno's Node compatibility version: `replguard_build_info` names
 * the real runtime and its version.
 */
import process from 'node:process';
import { collectDefaultMetrics, Gauge, type Registry } from 'prom-client';
import { productVersion } from '../core/package-root.ts';

const MISNAMED_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export function registerProcessMetrics(registry: Registry, role: 'backup' | 'primary'): void {
  collectDefaultMetrics({ register: registry });
  // Gauges named like counters, which `promtool check metrics` refuses (and a `rate()` over them
  // would be wrong): left out. nodejs_active_resources (by type) says the same, correctly named.
  for (const name of MISNAMED_DEFAULTS) registry.removeSingleMetric(name);
  const deno = (globalThis as { Deno?: { version?: { deno?: string } } }).Deno;
  const runtime = deno !== undefined ? 'deno' : 'node';
  new Gauge({
    name: 'replguard_build_info',
    help: 'Always 1; the labels name this build: version, role, runtime and runtime version.',
    labelNames: ['version', 'role', 'runtime', 'runtime_version'] as const,
    registers: [registry],
  }).set({ version: productVersion(), role, runtime, runtime_version: deno?.version?.deno ?? process.versions.node }, 1);
}
