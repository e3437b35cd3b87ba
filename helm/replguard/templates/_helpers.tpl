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

{{- define "replguard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "replguard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Pod labels that the Service and NetworkPolicy select; a host workload in
sidecar-only mode puts these on its pod template. */}}
{{- define "replguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "replguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "replguard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "replguard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "replguard.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Secret names: an existing Secret, else the one the chart creates (or expects). */}}
{{- define "replguard.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "replguard.fullname" .)) .Values.tls.existingSecret }}
{{- end }}
{{- define "replguard.clientCASecretName" -}}
{{- default (printf "%s-client-ca" (include "replguard.fullname" .)) .Values.clientCA.existingSecret }}
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
{{- define "replguard.path.auditDir" -}}/var/log/replguard{{- end }}
{{- define "replguard.path.adminToken" -}}{{ .Values.mountPath }}/admin/token{{- end }}
{{/* (list $root secretName key) -> <mountPath>/secrets/<name>/<key> */}}
{{- define "replguard.path.secret" -}}
{{- $root := index . 0 }}{{ $root.Values.mountPath }}/secrets/{{ index . 1 }}/{{ index . 2 }}
{{- end }}

{{/* Every file the chart mounts, one per line (NOTES.txt and the path check use it). */}}
{{- define "replguard.mountedFiles" -}}
{{ include "replguard.path.config" . }}
{{ include "replguard.path.serverCert" . }}
{{ include "replguard.path.serverKey" . }}
{{ include "replguard.path.clientCA" . }}
{{- if .Values.clientCA.crl }}
{{ include "replguard.path.crl" . }}
{{- end }}
{{- if .Values.adminToken.existingSecret }}
{{ include "replguard.path.adminToken" . }}
{{- end }}
{{- range $s := .Values.extraSecrets }}
{{- range (include "replguard.extraSecretKeys" $s) | fromJsonArray }}
{{ include "replguard.path.secret" (list $ $s.name .) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The keys of an extra Secret: `keys`, else the keys of `data`. */}}
{{- define "replguard.extraSecretKeys" -}}
{{- if .keys }}{{ toJson .keys }}{{ else }}{{ keys (default dict .data) | sortAlpha | toJson }}{{ end }}
{{- end }}

{{/* The chart's defaults for replguard.yaml. */}}
{{- define "replguard.configDefaults" -}}
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
# NetworkPolicy admits no traffic to it (except scrapes when the ServiceMonitor is on), and
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

{{/* The effective config as a dict rendered to YAML: values.config over the defaults. */}}
{{- define "replguard.config" -}}
{{- $defaults := include "replguard.configDefaults" . | fromYaml }}
{{- $user := deepCopy (default dict .Values.config) }}
{{- if not $user.pop_id }}{{ $_ := unset $user "pop_id" }}{{ end }}
{{- toYaml (mustMergeOverwrite $defaults $user) }}
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
{{- if and (gt (int .Values.replicaCount) 1) (ne (toString (dig "store" "type" "memory" $cfg)) "redis") }}
{{- fail "replicaCount > 1 needs redis.url (or config.store.type: redis): a nonce seen by one replica must be refused by the others" }}
{{- end }}
{{- $drain := include "replguard.durationSeconds" (default "25s" $cfg.shutdown_timeout) | int }}
{{- if le (int .Values.terminationGracePeriodSeconds) $drain }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed config.shutdown_timeout (%ds), or the drain is cut short by SIGKILL" (int .Values.terminationGracePeriodSeconds) $drain) }}
{{- end }}
{{- if and .Values.deployment.enabled (not .Values.backup.image.repository) }}
{{- fail "backup.image.repository is required (or deployment.enabled=false for sidecar-only)" }}
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

{{/* ---- Templates other charts include (sidecar-only mode) ---- */}}

{{/* The replguard container. Context: the replguard chart's scope, e.g. `.Subcharts.replguard`
from a parent chart, or `.` inside this chart. */}}
{{- define "replguard.sidecar.container" -}}
- name: replguard
  image: {{ include "replguard.image" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args: ["serve", "-c", {{ include "replguard.path.config" . | quote }}]
  {{- $cfg := include "replguard.config" . | fromYaml }}
  ports:
    - name: tls
      containerPort: {{ $cfg.listen.port }}
      protocol: TCP
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
{{- end }}

{{/* The pod volumes the container needs: one projected, read-only volume (the ConfigMap
and every Secret; updated in place on rotation, never a subPath) and the audit emptyDir. */}}
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
      - secret:
          name: {{ include "replguard.tlsSecretName" . }}
          items:
            - { key: tls.crt, path: tls/server.crt }
            - { key: tls.key, path: tls/server.key }
      - secret:
          name: {{ include "replguard.clientCASecretName" . }}
          items:
            - { key: ca.crt, path: tls/ca.crt }
            {{- if .Values.clientCA.crl }}
            - { key: ca.crl, path: tls/ca.crl }
            {{- end }}
      {{- if .Values.adminToken.existingSecret }}
      - secret:
          name: {{ .Values.adminToken.existingSecret }}
          items:
            - { key: {{ .Values.adminToken.key | quote }}, path: admin/token }
      {{- end }}
      {{- range $s := .Values.extraSecrets }}
      - secret:
          name: {{ include "replguard.extraSecretName" (list $ $s) }}
          items:
            {{- range $k := (include "replguard.extraSecretKeys" $s) | fromJsonArray }}
            - { key: {{ $k | quote }}, path: {{ printf "secrets/%s/%s" $s.name $k | quote }} }
            {{- end }}
      {{- end }}
{{- if .Values.audit.fileVolume.enabled }}
- name: replguard-audit
  emptyDir:
    sizeLimit: {{ .Values.audit.fileVolume.sizeLimit }}
{{- end }}
{{- end }}
