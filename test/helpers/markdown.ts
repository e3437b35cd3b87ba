/** Reading the tables of the docs as tables (header names, row cells), for the doc parity tests. */

/** The markdown table under the `## heading`, as rows of cells keyed by the header names. */
export function tableUnder(markdown: string, heading: string): Array<Record<string, string>> {
  const lines = markdown.split('\n');
  const start = lines.indexOf(`## ${heading}`);
  if (start === -1) throw new Error(`no "## ${heading}" section`);
  const end = lines.findIndex((l, i) => i > start && l.startsWith('## '));
  const section = lines.slice(start + 1, end === -1 ? undefined : end);
  const tableLines = section.filter((l) => l.startsWith('|'));
  if (tableLines.length < 2) throw new Error(`no table under "${heading}"`);
  const [header, rule, ...rows] = tableLines;
  const names = cells(header!);
  if (!cells(rule!).every((c) => /^:?-{3,}:?$/.test(c))) throw new Error(`second row of "${heading}" is not a rule`);
  return rows.map((line) => {
    const values = cells(line);
    if (values.length !== names.length) throw new Error(`row has ${values.length} cells, header ${names.length}: ${line}`);
    return Object.fromEntries(names.map((n, i) => [n, values[i]!]));
  });
}

/** The cells of one row; a `|` inside backticks (code) does not split a cell. */
function cells(line: string): string[] {
  if (!line.endsWith('|')) throw new Error(`table row does not end with "|": ${line}`);
  const out: string[] = [];
  let cell = '';
  let code = false;
  for (const ch of line.slice(1, -1)) {
    if (ch === '`') code = !code;
    if (ch === '|' && !code) {
      out.push(cell.trim());
      cell = '';
    } else cell += ch;
  }
  out.push(cell.trim());
  return out;
}
