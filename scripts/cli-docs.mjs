#!/usr/bin/env node
/**
 * The files generated from the CLI's usage table (src/cli/usage-table.ts): the man page
 * docs/replguard.1 and the README's "Command line" block (between the `commands` markers).
 * The completion scripts need no file: `replguard completion bash|zsh` prints them from the table.
 *
 *   TS_NODE_TRANSPILE_ONLY=1 node --import @tapjs/typescript/import scripts/cli-docs.mjs          # write
 *   TS_NODE_TRANSPILE_ONLY=1 node --import @tapjs/typescript/import scripts/cli-docs.mjs --check  # exit 1 if stale
 *
 * test/docs/cli-usage.test.ts fails when a committed file is not what this script makes.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderCommandList, renderManPage } from '../src/cli/help.ts';

export const MAN_PAGE_PATH = fileURLToPath(new URL('../docs/replguard.1', import.meta.url));
export const README_PATH = fileURLToPath(new URL('../README.md', import.meta.url));
const BEGIN = '<!-- commands: generated from src/cli/usage-table.ts by scripts/cli-docs.mjs -->\n```\n';
const END = '```\n<!-- /commands -->';

export function manPage() {
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  return renderManPage(version);
}

/** README.md with its command block as the table makes it. */
export function buildReadme(text) {
  const start = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (start < 0 || end < start) throw new Error(`README.md has no command block (${BEGIN.split('\n')[0]} ... ${END.split('\n')[1]})`);
  return text.slice(0, start + BEGIN.length) + renderCommandList() + text.slice(end);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const files = [
    [MAN_PAGE_PATH, manPage()],
    [README_PATH, buildReadme(readFileSync(README_PATH, 'utf8'))],
  ];
  let stale = false;
  for (const [file, next] of files) {
    let current = '';
    try { current = readFileSync(file, 'utf8'); } catch {}
    if (current === next) continue;
    if (process.argv.includes('--check')) {
      console.error(`${file} is not what src/cli/usage-table.ts makes: run scripts/cli-docs.mjs`);
      stale = true;
    } else {
      writeFileSync(file, next);
      console.log(`wrote ${file}`);
    }
  }
  if (stale) process.exit(1);
}
