# syntax=docker/dockerfile:1
# replguard: TLS/mTLS guard in front of a legacy backup's replication endpoint.
#
#   docker build -t replguard:0.1.0 .
#   docker run --read-only --cap-drop=ALL --security-opt no-new-privileges \
#     -v "$PWD/replguard:/etc/replguard:ro" -p 8443:8443 replguard:0.1.0
#
# NODE_IMAGE: the newest Node.js 24 LTS patch release on Debian 12, pinned by tag.
# Override it to rebuild on a newer patch (or a mirror) without editing this file.
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

# ---- build: full dependency tree, TypeScript compile, then drop dev dependencies
FROM ${NODE_IMAGE} AS build
ENV NPM_CONFIG_UPDATE_NOTIFIER=false
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: no dependency install script runs in the build; tsc needs none.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src/ src/
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

# ---- demo-backup (`--target demo-backup`): the project's demo of the legacy backup, for
# compose.yaml and the chart's defaults. Plain HTTP on loopback; never part of the runtime image.
FROM ${NODE_IMAGE} AS demo-backup
LABEL org.opencontainers.image.title="replguard-demo-backup" \
      org.opencontainers.image.description="Demo stand-in for a legacy backup's replication endpoint (not for production)" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY demo/backup.mjs /demo/backup.mjs
USER 10001:10001
ENTRYPOINT ["node", "/demo/backup.mjs"]
CMD ["--host", "127.0.0.1", "--port", "8080"]

# ---- runtime (the default target): dist/, production node_modules, package.json (ESM "type") and the license
FROM ${NODE_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="replguard" \
      org.opencontainers.image.description="TLS-terminating, mTLS-verifying guard for a legacy database backup's replication endpoint" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.vendor="replguard"
ENV NODE_ENV=production \
    REPLGUARD_HEALTHCHECK_URL=http://127.0.0.1:9090/healthz
WORKDIR /app
# Owned by root and not writable by the service user: the code cannot be altered at run time.
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules/ ./node_modules/
COPY --from=build /src/dist/ ./dist/
COPY LICENSE ./LICENSE
# The config (and the certificates, keys and tokens it names) is mounted read-only at
# /etc/replguard. /var/log/replguard is the only place the service may write, and only
# when `audit.file` is set: mount a volume (or tmpfs) there; the root filesystem can be read-only.
RUN mkdir -p /etc/replguard /var/log/replguard \
 && chown 10001:10001 /var/log/replguard \
 && chmod 0750 /var/log/replguard
USER 10001:10001
EXPOSE 8443 9090
# The admin listener (/healthz) is on loopback by default; the probe runs inside the container.
# Node's fetch, no curl: the image carries nothing it does not need.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.REPLGUARD_HEALTHCHECK_URL,{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Exec form: node is PID 1 and receives SIGTERM itself, drains, and exits 0.
ENTRYPOINT ["node", "/app/dist/main.js"]
CMD ["serve", "-c", "/etc/replguard/replguard.yaml"]
