{{/* Names and labels. */}}
{{- define "replguard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "replguard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* backup (the guard) or primary (the signer): config.role, as in replguard.yaml. */}}
{{- define "replguard.role" -}}
{{- default "backup" .Values.config.role }}
{{- end }}

{{/* Metadata labels of every object: the chart's, then commonLabels (which cannot replace them). */}}
{{- define "replguard.labels" -}}
{{- $own := dict
  "helm.sh/chart" (printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-")
  "app.kubernetes.io/name" (include "replguard.name" .)
  "app.kubernetes.io/instance" .Release.Name
  "app.kubernetes.io/version" .Chart.AppVersion
  "app.kubernetes.io/managed-by" .Release.Service }}
{{- toYaml (mustMergeOverwrite (deepCopy (default dict .Values.commonLabels)) $own) }}
{{- end }}

{{/* The selector of the chart's own Deployment and PodDisruptionBudget. Unchanged since 0.1.0:
a Deployment's selector is immutable, so an upgrade keeps it. Never put these on a host
workload: it has labels of its own (see replguard.podSelectorLabels). */}}
{{- define "replguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "replguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* What the Service, the NetworkPolicy and the PodMonitor select: a label key of replguard's
own (values.selectorLabels), which a host workload adds to its pod template and nowhere else. */}}
{{- define "replguard.podSelectorLabels" -}}
{{- if .Values.selectorLabels }}
{{- toYaml .Values.selectorLabels }}
{{- else -}}
replguard.io/instance: {{ include "replguard.fullname" . }}
{{- end }}
{{- end }}

{{- define "replguard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "replguard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* (list imageValues appVersion) -> repository@digest, or repository:tag (tag defaults to appVersion) */}}
{{- define "replguard.imageRef" -}}
{{- $img := index . 0 }}{{- $app := index . 1 }}
{{- if $img.digest }}
{{- printf "%s@%s" $img.repository $img.digest }}
{{- else }}
{{- printf "%s:%s" $img.repository (default $app $img.tag) }}
{{- end }}
{{- end }}
{{- define "replguard.image" -}}
{{- include "replguard.imageRef" (list .Values.image .Chart.AppVersion) }}
{{- end }}

{{/* Secret names: an existing Secret, else the one the chart (or cert-manager) creates. */}}
{{- define "replguard.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "replguard.fullname" .)) .Values.tls.existingSecret }}
{{- end }}
{{- define "replguard.clientCASecretName" -}}
{{- default (printf "%s-client-ca" (include "replguard.fullname" .)) .Values.clientCA.existingSecret }}
{{- end }}
{{- define "replguard.clientTLSSecretName" -}}
{{- default (printf "%s-client-tls" (include "replguard.fullname" .)) .Values.signer.clientTLS.existingSecret }}
{{- end }}
{{- define "replguard.backupCASecretName" -}}
{{- default (printf "%s-backup-ca" (include "replguard.fullname" .)) .Values.signer.backupCA.existingSecret }}
{{- end }}
{{- define "replguard.extraSecretName" -}}
{{- $root := index . 0 }}{{- $s := index . 1 }}
{{- default (printf "%s-%s" (include "replguard.fullname" $root) $s.name) $s.existingSecret }}
{{- end }}

{{/* File paths inside the container, one place for all of them. */}}
{{- define "replguard.path.config" -}}{{ .Values.mountPath }}/replguard.yaml{{- end }}
{{- define "replguard.path.serverCert" -}}{{ .Values.mountPath }}/tls/server.crt{{- end }}
{{- define "replguard.path.serverKey" -}}{{ .Values.mountPath }}/tls/server.key{{- end }}
{{- define "replguard.path.clientCA" -}}{{ .Values.mountPath }}/tls/ca.crt{{- end }}
{{- define "replguard.path.crl" -}}{{ .Values.mountPath }}/tls/ca.crl{{- end }}
{{- define "replguard.path.clientCert" -}}{{ .Values.mountPath }}/tls/client.crt{{- end }}
{{- define "replguard.path.clientKey" -}}{{ .Values.mountPath }}/tls/client.key{{- end }}
{{- define "replguard.path.backupCA" -}}{{ .Values.mountPath }}/tls/backup-ca.crt{{- end }}
{{- define "replguard.path.auditDir" -}}/var/log/replguard{{- end }}
{{- define "replguard.path.adminToken" -}}{{ .Values.mountPath }}/admin/token{{- end }}
{{/* (list $root secretName key) -> <mountPath>/secrets/<name>/<key> */}}
{{- define "replguard.path.secret" -}}
{{- $root := index . 0 }}{{ $root.Values.mountPath }}/secrets/{{ index . 1 }}/{{ index . 2 }}
{{- end }}

{{/* The Secrets of the projected volume, as JSON [{secret, items: [{key, path}]}]: only those
the effective config names, so that a config reading its TLS files from elsewhere (a SPIFFE
CSI volume) does not wait for a Secret nobody creates. Paths are relative to mountPath. */}}
{{- define "replguard.secretMounts" -}}
{{- $cfg := include "replguard.config" . | fromYaml }}
{{- $out := list }}
{{- if eq (include "replguard.role" .) "primary" }}
  {{- $items := list }}
  {{- if eq (toString (dig "client_tls" "cert_file" "" $cfg)) (include "replguard.path.clientCert" .) }}{{ $items = append $items (dict "key" "tls.crt" "path" "tls/client.crt") }}{{ end }}
  {{- if eq (toString (dig "client_tls" "key_file" "" $cfg)) (include "replguard.path.clientKey" .) }}{{ $items = append $items (dict "key" "tls.key" "path" "tls/client.key") }}{{ end }}
  {{- if $items }}{{ $out = append $out (dict "secret" (include "replguard.clientTLSSecretName" .) "items" $items) }}{{ end }}
  {{- if eq (toString (dig "backup" "ca_file" "" $cfg)) (include "replguard.path.backupCA" .) }}
  {{- $out = append $out (dict "secret" (include "replguard.backupCASecretName" .) "items" (list (dict "key" .Values.signer.backupCA.key "path" "tls/backup-ca.crt"))) }}
  {{- end }}
{{- else }}
  {{- $items := list }}
  {{- if eq (toString (dig "tls" "cert_file" "" $cfg)) (include "replguard.path.serverCert" .) }}{{ $items = append $items (dict "key" "tls.crt" "path" "tls/server.crt") }}{{ end }}
  {{- if eq (toString (dig "tls" "key_file" "" $cfg)) (include "replguard.path.serverKey" .) }}{{ $items = append $items (dict "key" "tls.key" "path" "tls/server.key") }}{{ end }}
  {{- if $items }}{{ $out = append $out (dict "secret" (include "replguard.tlsSecretName" .) "items" $items) }}{{ end }}
  {{- $items = list }}
  {{- if eq (toString (dig "tls" "client_ca_file" "" $cfg)) (include "replguard.path.clientCA" .) }}{{ $items = append $items (dict "key" "ca.crt" "path" "tls/ca.crt") }}{{ end }}
  {{- if .Values.clientCA.crl }}{{ $items = append $items (dict "key" "ca.crl" "path" "tls/ca.crl") }}{{ end }}
  {{- if $items }}{{ $out = append $out (dict "secret" (include "replguard.clientCASecretName" .) "items" $items) }}{{ end }}
  {{- if .Values.adminToken.existingSecret }}
  {{- $out = append $out (dict "secret" .Values.adminToken.existingSecret "items" (list (dict "key" .Values.adminToken.key "path" "admin/token"))) }}
  {{- end }}
{{- end }}
{{- range $s := .Values.extraSecrets }}
  {{- $items := list }}
  {{- range $k := (include "replguard.extraSecretKeys" $s) | fromJsonArray }}{{ $items = append $items (dict "key" $k "path" (printf "secrets/%s/%s" $s.name $k)) }}{{ end }}
  {{- $out = append $out (dict "secret" (include "replguard.extraSecretName" (list $ $s)) "items" $items) }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/* Every file the chart mounts, one per line (NOTES.txt and the path check use it). */}}
{{- define "replguard.mountedFiles" -}}
{{ include "replguard.path.config" . }}
{{- range $m := include "replguard.secretMounts" . | fromJsonArray }}
{{- range $m.items }}
{{ $.Values.mountPath }}/{{ .path }}
{{- end }}
{{- end }}
{{- end }}

{{/* The keys of an extra Secret: `keys`, else the keys of `data`. */}}
{{- define "replguard.extraSecretKeys" -}}
{{- if .keys }}{{ toJson .keys }}{{ else }}{{ keys (default dict .data) | sortAlpha | toJson }}{{ end }}
{{- end }}

{{/* The chart's defaults for replguard.yaml, by role. */}}
{{- define "replguard.configDefaults" -}}
{{- if eq (include "replguard.role" .) "primary" }}
pop_id: {{ default .Release.Name .Values.config.pop_id | quote }}
role: primary
# The primary's replication client posts here, on the pod's loopback, plain HTTP.
listen:
  host: 127.0.0.1
  port: 8080
backup:
  ca_file: {{ include "replguard.path.backupCA" . }}
{{- if .Values.signer.clientTLS.enabled }}
client_tls:
  cert_file: {{ include "replguard.path.clientCert" . }}
  key_file: {{ include "replguard.path.clientKey" . }}
{{- end }}
# Kubelet probes reach the pod IP; the signer's admin listener serves /healthz and /readyz only.
admin:
  host: 0.0.0.0
  port: 9090
shutdown_timeout: 25s
{{- else }}
pop_id: {{ default .Release.Name .Values.config.pop_id | quote }}
role: backup
listen:
  host: 0.0.0.0
  port: 8443
tls:
  cert_file: {{ include "replguard.path.serverCert" . }}
  key_file: {{ include "replguard.path.serverKey" . }}
  client_ca_file: {{ include "replguard.path.clientCA" . }}
  {{- if .Values.clientCA.crl }}
  crl_file: {{ include "replguard.path.crl" . }}
  {{- end }}
  min_version: TLSv1.3
upstream:
  url: http://127.0.0.1:{{ .Values.backup.port }}
  timeout: 30s
routes:
  - method: POST
    path: /api/replication/apply
auth:
  methods: [mtls]
peers: []
# Kubelet probes reach the pod IP, so the admin listener binds 0.0.0.0 in the pod; the
# NetworkPolicy admits no traffic to it (except scrapes when a monitor is on), and
# replguard answers ban administration only for the pod's loopback, or with the admin token.
admin:
  host: 0.0.0.0
  port: 9090
  {{- if .Values.adminToken.existingSecret }}
  token_file: {{ include "replguard.path.adminToken" . }}
  {{- end }}
limits:
  max_body_bytes: 10MiB
shutdown_timeout: 25s
{{- /* no store key = replguard's default, the in-memory store */}}
{{- if .Values.redis.url }}
store:
  type: redis
  url: {{ .Values.redis.url | quote }}
  key_prefix: {{ .Values.redis.keyPrefix | quote }}
{{- end }}
{{- if .Values.audit.fileVolume.enabled }}
audit:
  file: {{ include "replguard.path.auditDir" . }}/audit.ndjson
{{- end }}
{{- end }}
{{- end }}

{{/* The effective config as a dict rendered to YAML: values.config over the defaults. */}}
{{- define "replguard.config" -}}
{{- $defaults := include "replguard.configDefaults" . | fromYaml }}
{{- $user := deepCopy (default dict .Values.config) }}
{{- if not $user.pop_id }}{{ $_ := unset $user "pop_id" }}{{ end }}
{{- toYaml (mustMergeOverwrite $defaults $user) }}
{{- end }}

{{/* Top-level keys a running guard applies live when its ConfigMap changes (docs/operations.md,
"The config file"; test/packaging checks them against src/guard/reload.ts RESTART_ONLY).
Everything else (role, pop_id, listen, admin, store, and the state and audit sinks made once at
start-up: limits, replay, audit) needs a restart. The signer never re-reads its config file. */}}
{{- define "replguard.liveConfigKeys" -}}
peers routes auth upstream tls log shutdown_timeout
{{- end }}

{{/* The part of the config that needs a restart, as YAML: what the checksum covers. */}}
{{- define "replguard.restartConfig" -}}
{{- $cfg := include "replguard.config" . | fromYaml }}
{{- if ne (include "replguard.role" .) "primary" }}
{{- range $k := splitList " " (include "replguard.liveConfigKeys" .) }}{{ $_ := unset $cfg $k }}{{ end }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/* "30s", "2m", "1500ms", "1h" -> whole seconds, rounded up */}}
{{- define "replguard.durationSeconds" -}}
{{- $s := toString . }}
{{- if regexMatch "^[0-9]+ms$" $s }}{{ div (add (trimSuffix "ms" $s | atoi) 999) 1000 }}
{{- else if regexMatch "^[0-9]+s$" $s }}{{ trimSuffix "s" $s | atoi }}
{{- else if regexMatch "^[0-9]+m$" $s }}{{ mul (trimSuffix "m" $s | atoi) 60 }}
{{- else if regexMatch "^[0-9]+h$" $s }}{{ mul (trimSuffix "h" $s | atoi) 3600 }}
{{- else }}{{ fail (printf "config.shutdown_timeout %q: use a whole number with ms, s, m or h" $s) }}
{{- end }}
{{- end }}

{{/* Cross-field rules the schema cannot express; fail at render time, not in the pod. */}}
{{- define "replguard.validate" -}}
{{- $cfg := include "replguard.config" . | fromYaml }}
{{- $primary := eq (include "replguard.role" .) "primary" }}
{{- if and (not $primary) (gt (int .Values.replicaCount) 1) (ne (toString (dig "store" "type" "memory" $cfg)) "redis") }}
{{- fail "replicaCount > 1 needs redis.url (or config.store.type: redis): a nonce seen by one replica must be refused by the others" }}
{{- end }}
{{- $drain := include "replguard.durationSeconds" (default "25s" $cfg.shutdown_timeout) | int }}
{{- $delay := int .Values.preStopDelaySeconds }}
{{- if le (int .Values.terminationGracePeriodSeconds) (add $drain $delay) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed preStopDelaySeconds + config.shutdown_timeout (%d + %ds), or the drain is cut short by SIGKILL" (int .Values.terminationGracePeriodSeconds) $delay $drain) }}
{{- end }}
{{- if and .Values.sidecar.native (semverCompare "<1.29.0-0" .Capabilities.KubeVersion.Version) }}
{{- fail (printf "sidecar.native needs Kubernetes 1.29 or later (native sidecar containers); this is %s" .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- if $primary }}
  {{- if and .Values.deployment.enabled (not .Values.primary.image.repository) }}
  {{- fail "config.role primary with deployment.enabled needs primary.image.repository (your primary's image), or deployment.enabled=false to add the signer to the primary's own workload" }}
  {{- end }}
  {{- if not (dig "backup" "id" "" $cfg) }}{{ fail "config.role primary needs config.backup.id: the remote guard's pop_id" }}{{ end }}
  {{- if not (dig "backup" "url" "" $cfg) }}{{ fail "config.role primary needs config.backup.url: https://host:port of the remote guard" }}{{ end }}
  {{- if not $cfg.signing_keys }}{{ fail "config.role primary needs config.signing_keys: key files from extraSecrets (<mountPath>/secrets/<name>/<key>); every request is signed" }}{{ end }}
  {{- range $k, $v := dict "tls.create" .Values.tls.create "clientCA.create" .Values.clientCA.create "redis.url" .Values.redis.url "adminToken.existingSecret" .Values.adminToken.existingSecret "metrics.serviceMonitor.enabled" .Values.metrics.serviceMonitor.enabled "metrics.podMonitor.enabled" .Values.metrics.podMonitor.enabled "metrics.prometheusRule.enabled" .Values.metrics.prometheusRule.enabled "audit.fileVolume.enabled" .Values.audit.fileVolume.enabled "certManager.server.enabled" .Values.certManager.server.enabled }}
  {{- if $v }}{{ fail (printf "%s is for role backup (the guard); the signer (config.role primary) has no server certificate, shared store, ban administration, metrics or audit file" $k) }}{{ end }}
  {{- end }}
{{- else }}
  {{- if and .Values.deployment.enabled (not .Values.backup.image.repository) }}
  {{- fail "backup.image.repository is required (or deployment.enabled=false for sidecar-only)" }}
  {{- end }}
  {{- if .Values.certManager.client.enabled }}
  {{- fail "certManager.client is the signer's client certificate (config.role primary); the guard needs certManager.server" }}
  {{- end }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled .Values.metrics.podMonitor.enabled }}
{{- fail "enable one of metrics.serviceMonitor and metrics.podMonitor: both would scrape the same pods" }}
{{- end }}
{{- range $which := list "server" "client" }}
{{- $c := index $.Values.certManager $which }}
{{- if and $c.enabled (not (default $.Values.certManager.issuerRef.name (dig "name" "" $c.issuerRef))) }}
{{- fail (printf "certManager.%s needs an issuer: certManager.issuerRef.name or certManager.%s.issuerRef.name" $which $which) }}
{{- end }}
{{- end }}
{{- if and .Values.certManager.server.enabled .Values.tls.create }}
{{- fail "tls.create and certManager.server.enabled both write the server TLS Secret: choose one" }}
{{- end }}
{{- $mounted := include "replguard.mountedFiles" . | splitList "\n" }}
{{- range $p := include "replguard.configPaths" (list $cfg $.Values.mountPath) | splitList "\n" | compact }}
{{- if not (has $p $mounted) }}
{{- fail (printf "config names %s, which no Secret mounts: add it to extraSecrets (mounted under %s/secrets/<name>/<key>)" $p $.Values.mountPath) }}
{{- end }}
{{- end }}
{{- if and .Values.tls.create (or (not .Values.tls.certificate) (not .Values.tls.privateKey)) }}
{{- fail "tls.create needs tls.certificate and tls.privateKey (PEM)" }}
{{- end }}
{{- if and .Values.clientCA.create (not .Values.clientCA.certificate) }}
{{- fail "clientCA.create needs clientCA.certificate (PEM)" }}
{{- end }}
{{- range .Values.extraSecrets }}
{{- if and .existingSecret (not .keys) }}
{{- fail (printf "extraSecrets[%s]: list the keys to mount from the existing Secret %s" .name .existingSecret) }}
{{- end }}
{{- if and (not .existingSecret) (not .data) }}
{{- fail (printf "extraSecrets[%s]: give existingSecret (and keys) or data" .name) }}
{{- end }}
{{- end }}
{{- end }}

{{/* Strings anywhere in the config that lie under mountPath, one per line. */}}
{{- define "replguard.configPaths" -}}
{{- $v := index . 0 }}{{- $prefix := printf "%s/" (index . 1) }}
{{- if kindIs "map" $v }}
{{- range $k, $x := $v }}{{ include "replguard.configPaths" (list $x (index $ 1)) }}{{ end }}
{{- else if kindIs "slice" $v }}
{{- range $x := $v }}{{ include "replguard.configPaths" (list $x (index $ 1)) }}{{ end }}
{{- else if and (kindIs "string" $v) (hasPrefix $prefix $v) }}
{{ $v }}
{{- end }}
{{- end }}

{{/* ---- Templates a host workload includes (sidecar-only mode) ----
Each takes the replguard chart's scope: `.Subcharts.replguard` from a parent chart, or `.`
inside this chart. README.md ("Adding replguard to an existing workload") shows all of them. */}}

{{/* Labels for the host's pod template (metadata.labels), beside its own. Never its selector. */}}
{{- define "replguard.sidecar.podLabels" -}}
{{- include "replguard.podSelectorLabels" . }}
{{- end }}

{{/* Annotations for the host's pod template: a checksum of the config keys that need a restart
(empty when deployment.rollOnConfigChange is false), so that the pods roll for those and only
those. */}}
{{- define "replguard.sidecar.podAnnotations" -}}
{{- if .Values.deployment.rollOnConfigChange -}}
checksum/replguard-config: {{ include "replguard.restartConfig" . | sha256sum }}
{{- end }}
{{- end }}

{{/* The host pod's securityContext with what replguard needs added and nothing else changed:
an fsGroup, so the kubelet makes the Secret files group-readable for replguard (kept when the
host has one: its group becomes replguard's supplementary group), and fsGroupChangePolicy
OnRootMismatch, so the kubelet relabels a volume only when its root does not match already.
runAsUser, runAsGroup and the rest stay the host's: replguard's container sets its own.
Context: (dict "replguard" .Subcharts.replguard "host" <the host's podSecurityContext map>). */}}
{{- define "replguard.sidecar.podSecurityContext" -}}
{{- $rg := .replguard }}
{{- $out := deepCopy (default dict .host) }}
{{- if $rg.Values.sidecar.fsGroup }}
{{- $_ := set $out "fsGroup" (int $rg.Values.sidecar.fsGroup) }}
{{- else if not (hasKey $out "fsGroup") }}
{{- $_ := set $out "fsGroup" (int $rg.Values.securityContext.runAsGroup) }}
{{- end }}
{{- if not (hasKey $out "fsGroupChangePolicy") }}
{{- $_ := set $out "fsGroupChangePolicy" "OnRootMismatch" }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/* The replguard container (a list item). With sidecar.native it carries restartPolicy: Always
and belongs in initContainers: use replguard.sidecar.containers and replguard.sidecar.initContainers,
which place it by that value. */}}
{{- define "replguard.sidecar.container" -}}
{{- $cfg := include "replguard.config" . | fromYaml -}}
- name: replguard
  image: {{ include "replguard.image" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  {{- if .Values.sidecar.native }}
  # a native sidecar: started before the main containers, stopped after them
  restartPolicy: Always
  {{- end }}
  args: ["serve", "-c", {{ include "replguard.path.config" . | quote }}]
  ports:
    {{- if ne (include "replguard.role" .) "primary" }}
    - name: tls
      containerPort: {{ $cfg.listen.port }}
      protocol: TCP
    {{- end }}
    - name: admin
      containerPort: {{ $cfg.admin.port }}
      protocol: TCP
  startupProbe:
    httpGet: { path: /healthz, port: admin }
    periodSeconds: {{ .Values.probes.startup.periodSeconds }}
    failureThreshold: {{ .Values.probes.startup.failureThreshold }}
  livenessProbe:
    httpGet: { path: /healthz, port: admin }
    periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
    timeoutSeconds: {{ .Values.probes.liveness.timeoutSeconds }}
    failureThreshold: {{ .Values.probes.liveness.failureThreshold }}
  readinessProbe:
    httpGet: { path: /readyz, port: admin }
    periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
    timeoutSeconds: {{ .Values.probes.readiness.timeoutSeconds }}
    failureThreshold: {{ .Values.probes.readiness.failureThreshold }}
  {{- if gt (int .Values.preStopDelaySeconds) 0 }}
  lifecycle:
    # The endpoints controllers take the pod out of the Service while replguard still accepts;
    # SIGTERM (stop accepting, drain) follows. node, not sleep: the image has no shell.
    preStop:
      exec:
        command: ["node", "-e", "setTimeout(() => {}, {{ mul (int .Values.preStopDelaySeconds) 1000 }})"]
  {{- end }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  resources:
    {{- toYaml .Values.resources | nindent 4 }}
  volumeMounts:
    - name: replguard-files
      mountPath: {{ .Values.mountPath }}
      readOnly: true
    {{- if .Values.audit.fileVolume.enabled }}
    - name: replguard-audit
      mountPath: {{ include "replguard.path.auditDir" . }}
    {{- end }}
    {{- with .Values.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}

{{/* For `containers:`: the replguard container, unless it is a native sidecar. */}}
{{- define "replguard.sidecar.containers" -}}
{{- if not .Values.sidecar.native }}{{ include "replguard.sidecar.container" . }}{{ end }}
{{- end }}

{{/* For `initContainers:`: the replguard container when it is a native sidecar, else nothing. */}}
{{- define "replguard.sidecar.initContainers" -}}
{{- if .Values.sidecar.native }}{{ include "replguard.sidecar.container" . }}{{ end }}
{{- end }}

{{/* The pod volumes the container needs: one projected, read-only volume (the ConfigMap
and every Secret the config names; updated in place on rotation, never a subPath) and the audit
emptyDir. */}}
{{- define "replguard.sidecar.volumes" -}}
- name: replguard-files
  projected:
    # root-owned; fsGroup makes them group-readable for the service user and nobody else.
    # Never group-writable: replguard refuses a file others could change (docs/credentials.md).
    defaultMode: 0440
    sources:
      - configMap:
          name: {{ include "replguard.fullname" . }}
          items:
            - { key: replguard.yaml, path: replguard.yaml }
      {{- range $m := include "replguard.secretMounts" . | fromJsonArray }}
      - secret:
          name: {{ $m.secret }}
          items:
            {{- range $m.items }}
            - { key: {{ .key | quote }}, path: {{ .path | quote }} }
            {{- end }}
      {{- end }}
{{- if .Values.audit.fileVolume.enabled }}
- name: replguard-audit
  emptyDir:
    sizeLimit: {{ .Values.audit.fileVolume.sizeLimit }}
{{- end }}
{{- end }}
