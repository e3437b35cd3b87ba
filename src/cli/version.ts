/** `replguard version`: this build's version and every runtime dependency with its installed version. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';
import { parseCommandArgs } from './args.ts';
import { packageRoot } from './package-root.ts';

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

function runtimeText(): string {
  const runtime = typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined' ? 'deno' : 'node';
  return `${runtime} ${process.versions[runtime] ?? process.version}`;
}

/** `replguard 0.1.0 (node 20.19.0)`: what `replguard --version` prints. */
export function versionLine(): string {
  const own = readPackage(join(packageRoot, 'package.json'));
  return `${own?.name ?? 'replguard'} ${own?.version ?? 'unknown (package.json not found next to the program)'} (${runtimeText()})`;
}

export async function run(argv: string[] = []): Promise<number> {
  parseCommandArgs('version', argv);
  const own = readPackage(join(packageRoot, 'package.json'));
  if (!own) {
    process.stderr.write('version: package.json not found next to the program\n');
    return 1;
  }
  const lines = [`${own.name} ${own.version} (${runtimeText()})`, 'dependencies:'];
  for (const [name, range] of Object.entries(own.dependencies ?? {})) {
    const installed = readPackage(join(packageRoot, 'node_modules', name, 'package.json'));
    lines.push(`  ${name} ${installed?.version ?? `not installed (wants ${range})`}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
