# syntax=docker/dockerfile:1
# replguard: TLS/mTLS guard in front of a legacy backup's replication endpoint.
#
#   docker build -t replguard:0.1.0 \
#     --build-arg REVISION="$(git rev-parse HEAD)" --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
#     --build-arg SOURCE=<the repository's URL> .
#   docker run --read-only --cap-drop=ALL --security-opt no-new-privileges \
#     -v "$PWD/replguard:/etc/replguard:ro" -p 8443:8443 replguard:0.1.0
#
# NODE_IMAGE: the build base and the source of the runtime's node binary, pinned by digest.
#   tag: node:24.18.0-bookworm-slim (Node.js 24 LTS on Debian 12)
# The digest wins over the tag; to move to a newer patch, change both (or pass
# --build-arg NODE_IMAGE=... for a mirror).
ARG NODE_IMAGE=node:24.18.0-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d

# ---- build: full dependency tree, TypeScript compile, then drop dev dependencies; the SBOM
FROM ${NODE_IMAGE} AS build
ENV NPM_CONFIG_UPDATE_NOTIFIER=false
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: no dependency install script runs in the build; tsc needs none.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src/ src/
COPY scripts/image-sbom.mjs scripts/image-sbom.mjs
# The SBOM (CycloneDX): the production dependencies as the lockfile pins them
# (scripts/image-sbom.mjs says why not `npm sbom --omit dev`).
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm sbom --sbom-format cyclonedx --package-lock-only | node scripts/image-sbom.mjs > sbom.cdx.json \
 && npm cache clean --force

# ---- rootfs: what the runtime stage holds besides the application: the node binary, the
# shared libraries it loads (as ldd lists them), the loader's cache, and a passwd/group naming
# the service user. No shell, no npm, no npx, no coreutils.
FROM ${NODE_IMAGE} AS rootfs
RUN set -eu; \
  mkdir -p /rootfs/usr/local/bin /rootfs/etc/replguard /rootfs/var/log/replguard /rootfs/tmp; \
  cp /usr/local/bin/node /rootfs/usr/local/bin/node; \
  for lib in $(ldd /usr/local/bin/node | grep -oE '/[^ ]+'); do \
    mkdir -p "/rootfs$(dirname "$lib")"; cp -L "$lib" "/rootfs$lib"; \
  done; \
  cp /etc/ld.so.cache /rootfs/etc/ld.so.cache; \
  printf 'hosts: files dns\n' > /rootfs/etc/nsswitch.conf; \
  printf 'root:x:0:0:root:/root:/sbin/nologin\nreplguard:x:10001:10001:replguard:/nonexistent:/sbin/nologin\n' > /rootfs/etc/passwd; \
  printf 'root:x:0:\nreplguard:x:10001:\n' > /rootfs/etc/group; \
  chmod 1777 /rootfs/tmp; \
  chown 10001:10001 /rootfs/var/log/replguard; chmod 0750 /rootfs/var/log/replguard; \
  /rootfs/usr/local/bin/node --version

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

# ---- runtime (the default target): node and the application, nothing else. From scratch:
# every file is one of the stages above, so nothing can run but node.
FROM scratch AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=""
ARG SOURCE=""
LABEL org.opencontainers.image.title="replguard" \
      org.opencontainers.image.description="TLS-terminating, mTLS-verifying guard for a legacy database backup's replication endpoint" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.vendor="replguard"
COPY --from=rootfs /rootfs/ /
# Owned by root and not writable by the service user: the code cannot be altered at run time.
# /app/sbom.cdx.json: the CycloneDX SBOM of the production dependencies.
COPY --from=build /src/package.json /app/package.json
COPY --from=build /src/node_modules/ /app/node_modules/
COPY --from=build /src/dist/ /app/dist/
COPY --from=build /src/sbom.cdx.json /app/sbom.cdx.json
COPY LICENSE /app/LICENSE
ENV PATH=/usr/local/bin \
    NODE_ENV=production \
    REPLGUARD_HEALTHCHECK_URL=http://127.0.0.1:9090/healthz
WORKDIR /app
# The config (and the certificates, keys and tokens it names) is mounted read-only at
# /etc/replguard. /var/log/replguard is the only place the service may write, and only
# when `audit.file` is set: mount a volume (or tmpfs) there; the root filesystem can be read-only.
USER 10001:10001
EXPOSE 8443 9090
# The admin listener (/healthz) is on loopback by default; the probe runs inside the container.
# Node's fetch: the image has no curl and no shell.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.REPLGUARD_HEALTHCHECK_URL,{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Exec form: node is PID 1 and receives SIGTERM itself, drains, and exits 0.
ENTRYPOINT ["node", "/app/dist/main.js"]
CMD ["serve", "-c", "/etc/replguard/replguard.yaml"]
