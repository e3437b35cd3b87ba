// The folder layering of docs/ARCHITECTURE.md holds in src/: every import goes to a folder of a
// lower layer (never the same layer: stages do not know each other, nor do the two roles), no
// two folders import each other by any path, and every folder of src/ has a place in the table.
// Imports are read by the TypeScript compiler's own pre-processor, dynamic ones included.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import t from 'tap';
import ts from 'typescript';
import { tableUnder } from '../helpers/markdown.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const SRC = join(ROOT, 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

/** `src/auth/jwt.ts` -> `auth`; `src/main.ts` -> `(root)`. */
function folderOf(file: string): string {
  const parts = relative(SRC, file).split(sep);
  return parts.length > 1 ? parts[0]! : '(root)';
}

const layers = new Map<string, number>();
for (const row of tableUnder(readFileSync(join(ROOT, 'docs', 'ARCHITECTURE.md'), 'utf8'), 'Layers')) {
  for (const folder of row.folders!.split(',').map((f) => f.trim())) layers.set(folder, Number(row.layer));
}

interface Edge { from: string; to: string; file: string; target: string }
const edges: Edge[] = [];
const files = sourceFiles(SRC);
for (const file of files) {
  const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  for (const { fileName } of importedFiles) {
    if (!fileName.startsWith('.')) continue; // a package or node: builtin
    const target = resolve(dirname(file), fileName);
    edges.push({ from: folderOf(file), to: folderOf(target), file: relative(SRC, file), target: relative(SRC, target) });
  }
}

t.test('the table places every folder of src/, and only those', async (t) => {
  const folders = [...new Set(files.map(folderOf))].sort();
  t.same(folders, [...layers.keys()].sort());
  t.ok(edges.length > 100, `the imports were read (${edges.length})`);
});

t.test('every import between folders goes down the layers', async (t) => {
  const against = edges.filter((e) => e.from !== e.to && !((layers.get(e.to) ?? Infinity) < (layers.get(e.from) ?? -Infinity)));
  t.same(against.map((e) => `${e.file} (layer ${layers.get(e.from)}) imports ${e.target} (layer ${layers.get(e.to)})`), []);
});

t.test('no cycle between folders', async (t) => {
  const next = new Map<string, Set<string>>();
  for (const e of edges) if (e.from !== e.to) (next.get(e.from) ?? next.set(e.from, new Set()).get(e.from)!).add(e.to);
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (folder: string, path: string[]) => {
    if (state.get(folder) === 'done') return;
    if (state.get(folder) === 'open') {
      cycles.push([...path.slice(path.indexOf(folder)), folder].join(' -> '));
      return;
    }
    state.set(folder, 'open');
    for (const to of next.get(folder) ?? []) visit(to, [...path, folder]);
    state.set(folder, 'done');
  };
  for (const folder of next.keys()) visit(folder, []);
  t.same(cycles, []);
});
