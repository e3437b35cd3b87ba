/** `replguard version`: this build's version and every runtime dependency with its installed version. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';
import { packageRoot } from './package-root.ts';

export const usage = 'version                                       print the version and the runtime dependencies';

interface PackageJson {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
}

function readPackage(file: string): PackageJson | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as PackageJson;
  } catch {
    return undefined;
  }
}

export async function run(): Promise<number> {
  const own = readPackage(join(packageRoot, 'package.json'));
  if (!own) {
    process.stderr.write('version: package.json not found next to the program\n');
    return 1;
  }
  const runtime = typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined' ? 'deno' : 'node';
  const lines = [`${own.name} ${own.version} (${runtime} ${process.versions[runtime] ?? process.version})`, 'dependencies:'];
  for (const [name, range] of Object.entries(own.dependencies ?? {})) {
    const installed = readPackage(join(packageRoot, 'node_modules', name, 'package.json'));
    lines.push(`  ${name} ${installed?.version ?? `not installed (wants ${range})`}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
