# citysense hub and agent image (production users; the two README commands need no Docker).
# Stage 1 builds the web console (Vite is a dev dependency); stage 2 is the runtime.
FROM node:20-bookworm-slim AS manifests
WORKDIR /opt/citysense
COPY package.json package-lock.json .npmrc ./
COPY protocol/package.json protocol/
COPY device-drivers/package.json device-drivers/
COPY simulators/package.json simulators/
COPY algorithms/package.json algorithms/
COPY firmware-ota/package.json firmware-ota/
COPY edge-agent/package.json edge-agent/
COPY cloud-hub/package.json cloud-hub/
COPY console/package.json console/

FROM manifests AS console
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY console console
RUN npm run build -w console

FROM manifests
RUN npm ci --omit=dev --no-audit --no-fund
COPY . .
COPY --from=console /opt/citysense/console/dist console/dist
ENV NODE_ENV=production
ENTRYPOINT ["node", "bin/citysense.mjs"]
CMD ["hub"]
