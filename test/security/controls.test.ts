// Controls of the security review (docs/security.md) that live in the foundation and have no
// other test: the role and every other setting come from the config file, never from the
// environment (finding 3); the upstream stays on loopback (finding 8: the guard forwards only to
// the backup beside it); private keys readable by others are refused (finding 5's file checks).
import { chmodSync, copyFileSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import ts from 'typescript';
import YAML from 'yaml';
import { ConfigError } from '../../src/config/errors.ts';
import { parseConfig } from '../../src/guard/config.ts';
import { baseConfig } from '../helpers/guard.ts';
import { makePki } from '../helpers/pki.ts';

const SRC = join(import.meta.dirname, '..', '..', 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** Every place a module reads the environment: `process.env`, `Deno.env`, or `env` imported from node:process. */
function environmentReads(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  const found: string[] = [];
  const at = (node: ts.Node) => `${file.slice(SRC.length + 1)}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}`;
  const visit = (node: ts.Node) => {
    if (ts.isPropertyAccessExpression(node) && node.name.text === 'env' && ['process', 'Deno', 'globalThis.process'].includes(node.expression.getText())) found.push(at(node));
    if (ts.isElementAccessExpression(node) && ['process', 'Deno'].includes(node.expression.getText())) found.push(at(node));
    if (ts.isImportDeclaration(node) && /^['"](node:)?process['"]$/.test(node.moduleSpecifier.getText())) {
      const named = node.importClause?.namedBindings;
      if (named && ts.isNamedImports(named) && named.elements.some((e) => (e.propertyName ?? e.name).text === 'env')) found.push(at(node));
    }
    if (ts.isVariableDeclaration(node) && ts.isObjectBindingPattern(node.name) && node.initializer && ['process', 'Deno'].includes(node.initializer.getText())) {
      if (node.name.elements.some((e) => (e.propertyName ?? e.name).getText() === 'env')) found.push(at(node));
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

t.test('no module reads an environment variable: the role (and everything else) comes from the config file', async (t) => {
  const files = sourceFiles(SRC);
  t.ok(files.length > 20, `${files.length} modules scanned`);
  t.same(files.flatMap(environmentReads), []);
  // The scanner itself finds each form.
  const probe = join(mkdtempSync(join(tmpdir(), 'replguard-env-')), 'probe.ts');
  writeFileSync(probe, "import { env } from 'node:process';\nconst a = process.env.X;\nconst b = Deno.env.get('X');\nconst { env: e } = process;\nconst c = process['env'];\n");
  t.equal(environmentReads(probe).length, 5);
});

const pki = makePki([]);
const dir = mkdtempSync(join(tmpdir(), 'replguard-controls-'));
const problemsOf = (config: Record<string, unknown>) => {
  try {
    parseConfig(YAML.stringify(config), join(dir, 'replguard.yaml'));
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems.map((p) => p.path);
  }
};

t.test('the upstream must be on loopback unless the risk is named in the key', async (t) => {
  t.same(problemsOf(baseConfig(pki, 'http://10.1.2.3:8080')), ['upstream.url']);
  t.same(problemsOf(baseConfig(pki, 'http://127.0.0.1:8080')), []);
  t.same(problemsOf(baseConfig(pki, 'http://10.1.2.3:8080', { upstream: { url: 'http://10.1.2.3:8080', unsafe_allow_plaintext_upstream_host: true } })), []);
});

t.test('a private key readable by others is refused at start-up', async (t) => {
  const key = join(dir, 'server.key');
  copyFileSync(pki.server.key, key);
  chmodSync(key, 0o644);
  const config = baseConfig(pki, 'http://127.0.0.1:8080', { tls: { cert_file: pki.server.cert, key_file: key, client_ca_file: pki.caFile } });
  t.same(problemsOf(config), ['tls.key_file']);
  chmodSync(key, 0o600);
  t.same(problemsOf(config), []);
});
