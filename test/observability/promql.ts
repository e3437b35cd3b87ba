/**
 * What a PromQL expression reads, for the observability tests: the series selectors (metric name
 * and label matchers) and the labels named in by/without/on/ignoring/group_left/group_right.
 * A lexer, not a parser: promtool (Prometheus's own parser) checks the syntax of the same
 * expressions in the tests that use this, so this only has to find names in valid PromQL. Anything
 * it cannot lex is an error, not skipped.
 */

export interface Matcher {
  label: string;
  op: '=' | '!=' | '=~' | '!~';
  value: string;
}

export interface Selector {
  /** The metric name; `__name__="x"` in the braces counts as the name x. */
  name: string | undefined;
  matchers: Matcher[];
}

export interface ExpressionReads {
  selectors: Selector[];
  /** Labels named in grouping and vector-matching clauses. */
  groupingLabels: string[];
}

type Token =
  | { kind: 'ident'; text: string }
  | { kind: 'string'; text: string }
  | { kind: 'number'; text: string }
  | { kind: 'duration'; text: string }
  | { kind: 'punct'; text: string };

const KEYWORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'atan2', 'inf', 'nan', 'start', 'end']);
const GROUPING = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const PUNCT = ['=~', '!~', '==', '!=', '<=', '>=', '(', ')', '{', '}', '[', ']', ',', ':', '+', '-', '*', '/', '%', '^', '<', '>', '=', '@'];

function unquote(raw: string): string {
  const quote = raw[0];
  const body = raw.slice(1, -1);
  if (quote === '`') return body;
  // Go string escapes as PromQL reads them; the ones that matter for label values.
  return body.replace(/\\(.)/g, (_, c: string) => ({ n: '\n', t: '\t', '\\': '\\', '"': '"', "'": "'" })[c] ?? `\\${c}`);
}

export function lex(expr: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < expr.length) {
    const rest = expr.slice(i);
    const space = /^(\s+|#[^\n]*)/.exec(rest);
    if (space) {
      i += space[0].length;
      continue;
    }
    const str = /^("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)/.exec(rest);
    if (str) {
      tokens.push({ kind: 'string', text: unquote(str[0]) });
      i += str[0].length;
      continue;
    }
    const duration = /^(\d+(ms|[smhdwy]))+(?![a-zA-Z0-9_:])/.exec(rest);
    if (duration) {
      tokens.push({ kind: 'duration', text: duration[0] });
      i += duration[0].length;
      continue;
    }
    const num = /^(0[xX][0-9a-fA-F]+|(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)(?![a-zA-Z0-9_:])/.exec(rest);
    if (num) {
      tokens.push({ kind: 'number', text: num[0] });
      i += num[0].length;
      continue;
    }
    const ident = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(rest);
    if (ident) {
      tokens.push({ kind: 'ident', text: ident[0] });
      i += ident[0].length;
      continue;
    }
    const punct = PUNCT.find((p) => rest.startsWith(p));
    if (punct) {
      tokens.push({ kind: 'punct', text: punct });
      i += punct.length;
      continue;
    }
    throw new Error(`cannot lex PromQL at "${rest.slice(0, 20)}" in: ${expr}`);
  }
  return tokens;
}

const isPunct = (t: Token | undefined, text: string) => t?.kind === 'punct' && t.text === text;

export function reads(expr: string): ExpressionReads {
  const tokens = lex(expr);
  const selectors: Selector[] = [];
  const groupingLabels: string[] = [];
  let i = 0;

  /** Reads `{ label op "value", ... }` starting at the `{`; returns the index after the `}`. */
  function matchers(at: number, into: Matcher[]): number {
    let j = at + 1;
    while (!isPunct(tokens[j], '}')) {
      const label = tokens[j];
      const op = tokens[j + 1];
      const value = tokens[j + 2];
      if (label?.kind !== 'ident' || op?.kind !== 'punct' || !['=', '!=', '=~', '!~'].includes(op.text) || value?.kind !== 'string') {
        throw new Error(`bad label matcher at token ${j} in: ${expr}`);
      }
      into.push({ label: label.text, op: op.text as Matcher['op'], value: value.text });
      j += 3;
      if (isPunct(tokens[j], ',')) j += 1;
      else if (!isPunct(tokens[j], '}')) throw new Error(`expected "," or "}" at token ${j} in: ${expr}`);
    }
    return j + 1;
  }

  while (i < tokens.length) {
    const tok = tokens[i]!;
    if (tok.kind === 'punct' && tok.text === '[') {
      // A range or subquery: durations and Grafana's variables only.
      while (i < tokens.length && !isPunct(tokens[i], ']')) i += 1;
      i += 1;
      continue;
    }
    if (tok.kind === 'punct' && tok.text === '{') {
      const selector: Selector = { name: undefined, matchers: [] };
      i = matchers(i, selector.matchers);
      const name = selector.matchers.find((m) => m.label === '__name__' && m.op === '=');
      selector.name = name?.value;
      selectors.push(selector);
      continue;
    }
    if (tok.kind !== 'ident') {
      i += 1;
      continue;
    }
    const word = tok.text;
    if (GROUPING.has(word.toLowerCase())) {
      i += 1;
      if (isPunct(tokens[i], '(')) {
        i += 1;
        while (i < tokens.length && !isPunct(tokens[i], ')')) {
          const label = tokens[i]!;
          if (label.kind === 'ident') groupingLabels.push(label.text);
          else if (!isPunct(label, ',')) throw new Error(`bad grouping list in: ${expr}`);
          i += 1;
        }
        i += 1;
      }
      continue;
    }
    if (KEYWORDS.has(word.toLowerCase())) {
      i += 1;
      continue;
    }
    const next = tokens[i + 1];
    if (isPunct(next, '(') || (next?.kind === 'ident' && ['by', 'without'].includes(next.text.toLowerCase()))) {
      // A function, or an aggregation (`sum(...)`, `sum by (l) (...)`).
      i += 1;
      continue;
    }
    const selector: Selector = { name: word, matchers: [] };
    i += 1;
    if (isPunct(tokens[i], '{')) i = matchers(i, selector.matchers);
    selectors.push(selector);
  }
  return { selectors, groupingLabels };
}

/** Whether a matcher accepts a label value, with PromQL's semantics (regexes fully anchored). */
export function matcherAccepts(m: Matcher, value: string): boolean {
  switch (m.op) {
    case '=':
      return value === m.value;
    case '!=':
      return value !== m.value;
    case '=~':
      return new RegExp(`^(?:${m.value})$`).test(value);
    case '!~':
      return !new RegExp(`^(?:${m.value})$`).test(value);
  }
}

/**
 * The literal alternatives of a regex matcher that is a plain alternation of codes and
 * `PREFIX_.*` patterns (`A|B|C_.*`), each to be checked on its own: a typo in one alternative
 * of many would otherwise go unseen. undefined for any other regex.
 */
export function alternatives(m: Matcher): string[] | undefined {
  if (m.op !== '=~' && m.op !== '!~') return [m.value];
  const parts = m.value.split('|');
  return parts.every((p) => /^[A-Za-z0-9_.:-]+(\.\*)?$/.test(p)) ? parts : undefined;
}

/**
 * Grafana's variables, replaced by values PromQL accepts, so that a dashboard's queries can be
 * checked by promtool and read by `reads`.
 */
export function withoutGrafanaVariables(expr: string, values: Record<string, string> = {}): string {
  const defaults: Record<string, string> = { __rate_interval: '5m', __interval: '1m', __range: '1h', __range_s: '3600', ...values };
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g, (whole, a: string | undefined, b: string | undefined) => {
    const name = (a ?? b)!;
    const value = defaults[name];
    if (value === undefined) throw new Error(`no value for the Grafana variable ${whole} in: ${expr}`);
    return value;
  });
}
