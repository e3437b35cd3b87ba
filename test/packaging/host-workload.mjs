#!/usr/bin/env node
// node test/packaging/host-workload.mjs BEFORE.yaml AFTER.yaml
//
// The host workload of helm/examples/backup-statefulset, rendered without replguard (BEFORE,
// replguard.enabled=false) and with it (AFTER): everything the host had is still there with the
// same value (labels, selector, uid, gid, fsGroup, containers, volume claims), replguard only
// added to it, and replguard's Service and NetworkPolicy select the host's pods by replguard's
// own label. Run by .ci/packaging.sh; needs the `yaml` package (K8S_VALIDATE_HOME or the repo's).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(process.env.K8S_VALIDATE_HOME ? `${process.env.K8S_VALIDATE_HOME}/` : import.meta.url);
const { parseAllDocuments } = require('yaml');

const load = (file) => parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS()).filter(Boolean);
const [beforeFile, afterFile] = process.argv.slice(2);
if (!afterFile) {
  // `tap test/packaging/` runs every file here: this one is a helper of .ci/packaging.sh
  console.log('1..0 # SKIP a helper of .ci/packaging.sh: host-workload.mjs BEFORE.yaml AFTER.yaml');
  process.exit(0);
}
const before = load(beforeFile);
const after = load(afterFile);
const problems = [];

/** Every value of `a` is in `b` at the same path; a list item of `a` is a subset of some item of `b`. */
function subset(a, b, path) {
  if (Array.isArray(a)) {
    if (!Array.isArray(b)) return problems.push(`${path}: was a list`);
    a.forEach((item, i) => {
      const found = b.some((candidate) => { const saved = problems.length; subset(item, candidate, ''); const ok = problems.length === saved; problems.length = saved; return ok; });
      if (!found) problems.push(`${path}[${i}] (${JSON.stringify(item).slice(0, 80)}) is gone or changed`);
    });
  } else if (a !== null && typeof a === 'object') {
    if (b === null || typeof b !== 'object' || Array.isArray(b)) return problems.push(`${path}: was an object`);
    for (const [k, v] of Object.entries(a)) {
      if (!(k in b)) problems.push(`${path}.${k} is gone`);
      else subset(v, b[k], `${path}.${k}`);
    }
  } else if (a !== b) problems.push(`${path}: ${JSON.stringify(a)} became ${JSON.stringify(b)}`);
}

const host = before.find((d) => d.kind === 'StatefulSet');
const guarded = after.find((d) => d.kind === 'StatefulSet' && d.metadata.name === host?.metadata.name);
if (!host || !guarded) {
  console.log('no StatefulSet in both renderings');
  process.exit(1);
}
if (before.length !== 1) problems.push(`without replguard the chart renders ${before.length} objects, expected the StatefulSet alone`);
subset(host, guarded, 'StatefulSet');
const same = (a, b, what) => { if (JSON.stringify(a) !== JSON.stringify(b)) problems.push(`${what}: ${JSON.stringify(a)} became ${JSON.stringify(b)}`); };
same(host.spec.selector, guarded.spec.selector, 'spec.selector (immutable on a live StatefulSet)');
same(host.metadata.labels, guarded.metadata.labels, 'metadata.labels');
same(host.spec.volumeClaimTemplates, guarded.spec.volumeClaimTemplates, 'volumeClaimTemplates');
const hostSc = host.spec.template.spec.securityContext;
const sc = guarded.spec.template.spec.securityContext;
for (const key of ['runAsUser', 'runAsGroup', 'fsGroup']) same(hostSc[key], sc[key], `pod securityContext.${key}`);
const added = Object.keys(sc).filter((k) => !(k in hostSc));
same(added, ['fsGroupChangePolicy'], 'pod securityContext keys replguard added');
same(sc.fsGroupChangePolicy, 'OnRootMismatch', 'fsGroupChangePolicy');

const pod = guarded.spec.template;
const rg = [...(pod.spec.containers ?? []), ...(pod.spec.initContainers ?? [])].find((c) => c.name === 'replguard');
if (!rg) problems.push('no replguard container');
else if (rg.securityContext?.runAsUser !== 10001) problems.push('replguard does not run as its own uid 10001');
const matches = (selector, labels) => Object.entries(selector).every(([k, v]) => labels[k] === v);
for (const kind of ['Service', 'NetworkPolicy']) {
  const obj = after.find((d) => d.kind === kind);
  const selector = kind === 'Service' ? obj?.spec.selector : obj?.spec.podSelector.matchLabels;
  if (!selector) { problems.push(`no ${kind}`); continue; }
  if (!matches(selector, pod.metadata.labels)) problems.push(`the ${kind} does not select the host's pods`);
  if (Object.keys(selector).some((k) => k in host.spec.selector.matchLabels)) problems.push(`the ${kind} selects by a label key of the host's selector`);
}

if (problems.length) {
  console.log(problems.join('\n'));
  process.exit(1);
}
console.log(`ok: selector ${JSON.stringify(guarded.spec.selector.matchLabels)}, uid ${sc.runAsUser}/${sc.runAsGroup}, fsGroup ${sc.fsGroup}, ` +
  `volumes ${guarded.spec.volumeClaimTemplates.map((v) => v.metadata.name).join(',')}; replguard ${rg.restartPolicy === 'Always' ? 'native sidecar' : 'container'}; ` +
  `Service and NetworkPolicy select ${JSON.stringify(after.find((d) => d.kind === 'Service').spec.selector)}`);
