#!/usr/bin/env node
// node scripts/image-sbom.mjs < npm-sbom.json > sbom.cdx.json
//
// The image's SBOM: `npm sbom --sbom-format cyclonedx --package-lock-only` (the lockfile's whole
// tree) narrowed to the production dependencies, the ones npm marks scope "required". Not
// `--omit dev`: npm 10 and 11 then also drop production packages that a dev dependency shares
// (yaml, lru-cache here). The root component is named after package.json (npm names it after
// the folder). .ci/packaging.sh checks the result against the image's own node_modules.
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const sbom = JSON.parse(readFileSync(0, 'utf8'));
const oldRoot = sbom.metadata.component['bom-ref'];
const root = `${pkg.name}@${pkg.version}`;
Object.assign(sbom.metadata.component, { type: 'application', name: pkg.name, version: pkg.version, purl: `pkg:npm/${pkg.name}@${pkg.version}`, 'bom-ref': root });
sbom.components = sbom.components.filter((c) => c.scope === 'required');
const kept = new Set([root, ...sbom.components.map((c) => c['bom-ref'])]);
const ref = (r) => (r === oldRoot ? root : r);
sbom.dependencies = (sbom.dependencies ?? [])
  .map((d) => ({ ...d, ref: ref(d.ref), dependsOn: (d.dependsOn ?? []).map(ref).filter((r) => kept.has(r)) }))
  .filter((d) => kept.has(d.ref));
process.stdout.write(JSON.stringify(sbom, null, 2) + '\n');
