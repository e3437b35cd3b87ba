/**
 * Finds secret values in log text. The needles come from every file the config references (any
 * key ending in `_file` or `_files`, and the files of any `_dir` folder), so a secret file added
 * by a later stage is scanned without changing this helper, plus any value the test adds
 * (tokens it sent in headers). A PEM file yields each base64 line of its blocks and, for private
 * keys, the private numbers in JWK form (base64url); any other file its content and its lines.
 */
import { createPrivateKey } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface Needle {
  readonly source: string;
  readonly value: string;
}

/** Shorter fragments could occur by chance; 16 base64 characters are 96 bits. */
const MIN_LENGTH = 16;

export function referencedFiles(config: unknown, path = ''): Array<{ key: string; file: string }> {
  const out: Array<{ key: string; file: string }> = [];
  if (Array.isArray(config)) {
    config.forEach((v, i) => {
      out.push(...referencedFiles(v, `${path}[${i}]`));
    });
  } else if (config && typeof config === 'object') {
    for (const [k, v] of Object.entries(config)) {
      const key = path ? `${path}.${k}` : k;
      const fileKey = /_files?$/.test(k);
      const dirKey = /_dir$/.test(k);
      const values = typeof v === 'string' ? [v] : Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : [];
      if ((fileKey || dirKey) && values.length > 0) {
        for (const value of values) {
          if (statSync(value).isDirectory()) for (const name of readdirSync(value)) out.push({ key, file: join(value, name) });
          else out.push({ key, file: value });
        }
      } else {
        out.push(...referencedFiles(v, key));
      }
    }
  }
  return out;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]+?)-----END \1-----/g;

export function needlesFromFile(file: string, source = file): Needle[] {
  const text = readFileSync(file, 'utf8');
  const needles: Needle[] = [];
  const add = (value: string, what: string) => {
    if (value.length >= MIN_LENGTH) needles.push({ source: `${source} (${what})`, value });
  };
  const blocks = [...text.matchAll(PEM_BLOCK)];
  if (blocks.length === 0) {
    add(text.trim(), 'content');
    for (const line of text.split('\n')) add(line.trim(), 'line');
    return needles;
  }
  for (const [block, label, body] of blocks) {
    for (const line of body!.split('\n')) add(line.trim(), `${label} base64 line`);
    add(body!.replace(/\s+/g, ''), `${label} base64`);
    if (/PRIVATE KEY/.test(label!)) {
      const jwk = createPrivateKey(block).export({ format: 'jwk' }) as Record<string, string>;
      for (const part of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) if (jwk[part]) add(jwk[part]!, `private ${part}`);
    }
  }
  return needles;
}

/** Every occurrence of a needle in `text`, by line. */
export function findSecrets(text: string, needles: readonly Needle[]): string[] {
  const found: string[] = [];
  text.split('\n').forEach((line, i) => {
    for (const n of needles) if (line.includes(n.value)) found.push(`line ${i + 1}: ${n.source}`);
  });
  return found;
}
