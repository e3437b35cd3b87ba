/**
 * Which runtime the end-to-end tests start the product under. The test harness decides (the
 * product itself reads no environment): `REPLGUARD_TEST_RUNTIME=deno` runs the same black-box
 * suite against `deno run src/main.ts`, anything else against `node dist/main.js`.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';

export const ROOT = join(import.meta.dirname, '..', '..');

export type Runtime = 'node' | 'deno';

export const RUNTIME: Runtime = process.env.REPLGUARD_TEST_RUNTIME === 'deno' ? 'deno' : 'node';

/** The Deno binary the project installs (devDependency `deno`, a registry package with the binary inside). */
export function denoBinary(): string {
  const candidates = [
    join(ROOT, 'node_modules', '@deno', 'linux-x64-glibc', 'deno'),
    join(ROOT, 'node_modules', '@deno', 'linux-arm64-glibc', 'deno'),
    join(ROOT, 'node_modules', '.bin', 'deno'),
  ];
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new Error('Deno is not installed: run npm ci (devDependency deno)');
  return found;
}

/** The command that runs the product's CLI under the chosen runtime. */
export function productCommand(runtime: Runtime = RUNTIME): string[] {
  if (runtime === 'deno') return [denoBinary(), 'run', '--quiet', '--allow-all', '--no-prompt', join(ROOT, 'src', 'main.ts')];
  return [process.execPath, join(ROOT, 'dist', 'main.js')];
}
