// One set of alerting rules: the chart's default PrometheusRule (helm/replguard/files/
// prometheus-rules.yaml, the file its template reads when metrics.prometheusRule.groups and
// .rulesYaml are empty) is a byte-for-byte copy of deploy/prometheus/replguard-rules.yaml, the
// file promtool checks and unit-tests (test/observability/prometheus-rules.test.ts). Helm cannot
// read a file outside the chart, hence a copy; this test fails the moment the two differ.
// .ci/packaging.sh renders the chart and checks that the PrometheusRule carries exactly the
// repository file's groups.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

const root = join(import.meta.dirname, '..', '..');
const repository = join(root, 'deploy', 'prometheus', 'replguard-rules.yaml');
const chart = join(root, 'helm', 'replguard', 'files', 'prometheus-rules.yaml');

t.test("the chart's default rules are the repository's rules file, byte for byte", async (t) => {
  const a = readFileSync(repository);
  const b = readFileSync(chart);
  t.ok(a.length > 1000, 'the rules file was read');
  t.ok(a.equals(b), `${chart} differs from ${repository}: cp deploy/prometheus/replguard-rules.yaml helm/replguard/files/prometheus-rules.yaml`);
});

t.test('the template renders that file when no groups are given in values', async (t) => {
  const template = readFileSync(join(root, 'helm', 'replguard', 'templates', 'prometheusrule.yaml'), 'utf8');
  t.match(template, /\$\.Files\.Get "files\/prometheus-rules\.yaml"/, 'the default is files/prometheus-rules.yaml');
  t.match(template, /\{\{- toYaml \$groups \| nindent 4 \}\}/, 'its groups, as they are');
});
