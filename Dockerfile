# citysense hub and agent image (production users; the two README commands need no Docker).
FROM node:20-bookworm-slim
WORKDIR /opt/citysense
COPY package.json package-lock.json .npmrc ./
COPY protocol/package.json protocol/
COPY device-drivers/package.json device-drivers/
COPY simulators/package.json simulators/
COPY algorithms/package.json algorithms/
COPY firmware-ota/package.json firmware-ota/
COPY edge-agent/package.json edge-agent/
COPY cloud-hub/package.json cloud-hub/
RUN npm ci --omit=dev --no-audit --no-fund
COPY . .
ENV NODE_ENV=production
ENTRYPOINT ["node", "bin/citysense.mjs"]
CMD ["hub"]
