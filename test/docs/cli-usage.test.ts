// The usage table (src/cli/usage-table.ts) is the one source of --help, the README's command
// list, the man page and the completion scripts: the committed files are what it makes today.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { bashCompletion, zshCompletion } from '../../src/cli/completion.ts';
import { renderCommandList, synopsis } from '../../src/cli/help.ts';
import { COMMANDS } from '../../src/cli/usage-table.ts';
// @ts-expect-error -- a plain ES module without types, run by node as well as imported here
import { buildReadme, MAN_PAGE_PATH, manPage, README_PATH } from '../../scripts/cli-docs.mjs';

t.test('the committed man page and README command list are what the table makes', async (t) => {
  // On failure: TS_NODE_TRANSPILE_ONLY=1 node --import @tapjs/typescript/import scripts/cli-docs.mjs
  t.equal(readFileSync(MAN_PAGE_PATH, 'utf8'), manPage(), 'docs/replguard.1');
  const readme = readFileSync(README_PATH, 'utf8');
  t.equal(buildReadme(readme), readme, 'README.md "Command line"');
  t.ok(readme.includes(renderCommandList()));
});

t.test('every command and option of the table is in each output', async (t) => {
  const man = readFileSync(MAN_PAGE_PATH, 'utf8');
  const bash = bashCompletion();
  const zsh = zshCompletion();
  for (const c of COMMANDS) {
    t.ok(renderCommandList().includes(`replguard ${synopsis(c)}`), `README: ${c.name}`);
    t.ok(man.includes(`.B replguard ${c.name.replace(/-/g, '\\-')}`), `man: ${c.name}`);
    t.match(bash, new RegExp(`^    ${c.name}\\)$`, 'm'), `bash: ${c.name}`);
    t.match(zsh, new RegExp(`^    ${c.name}\\) _arguments `, 'm'), `zsh: ${c.name}`);
    for (const o of c.options) {
      t.ok(man.includes(`\\-\\-${o.name.replace(/-/g, '\\-')}`), `man: ${c.name} --${o.name}`);
      t.ok(bash.includes(`--${o.name}`), `bash: ${c.name} --${o.name}`);
      t.ok(zsh.includes(`--${o.name}`), `zsh: ${c.name} --${o.name}`);
    }
  }
});

t.test('the bash completion is valid bash and completes commands and options', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'replguard-completion-'));
  const file = join(dir, 'replguard.bash');
  writeFileSync(file, bashCompletion());
  execFileSync('bash', ['-n', file]);
  const complete = (line: string) => execFileSync('bash', ['-c', `source ${file}; COMP_WORDS=(${line}); COMP_CWORD=$((\${#COMP_WORDS[@]}-1)); _replguard; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: 'utf8' }).trim().split('\n');
  t.same(complete("replguard check-c"), ['check-config']);
  t.same(complete("replguard check-config --pr"), ['--print']);
  t.same(complete("replguard make-jwt --alg ES"), ['ES256', 'ES384', 'ES512']);
});
