# One image for every genq process; the command picks the role:
#   api:     node --import tsx apps/api/src/main.ts
#   worker:  node --import tsx apps/worker/src/main.ts
#   migrate: node --import tsx apps/cli/src/main.ts migrate
FROM node:24-bookworm-slim
ENV PNPM_HOME=/pnpm PATH=/pnpm:$PATH CI=true
RUN npm install --global pnpm@10
WORKDIR /app
# Manifests first, so dependency layers are cached across source changes.
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml tsconfig.base.json prisma.config.ts ./
COPY prisma ./prisma
COPY packages/db/scripts ./packages/db/scripts
COPY apps/api/package.json apps/api/
COPY apps/worker/package.json apps/worker/
COPY apps/cli/package.json apps/cli/
COPY packages/client/package.json packages/client/
COPY packages/core/package.json packages/core/
COPY packages/db/package.json packages/db/
COPY packages/events/package.json packages/events/
COPY packages/lifecycle/package.json packages/lifecycle/
COPY packages/metrics/package.json packages/metrics/
COPY packages/net-guard/package.json packages/net-guard/
COPY packages/queue/package.json packages/queue/
COPY packages/providers/package.json packages/providers/
COPY packages/runner/package.json packages/runner/
COPY packages/quota/package.json packages/quota/
COPY packages/storage/package.json packages/storage/
COPY packages/telemetry/package.json packages/telemetry/
COPY packages/webhooks/package.json packages/webhooks/
COPY bench/package.json bench/
COPY tests/e2e/package.json tests/e2e/
# postinstall generates the Prisma client from prisma/schema.prisma.
RUN pnpm install --frozen-lockfile
COPY . .
RUN node packages/db/scripts/generate.mjs
ENV NODE_ENV=production HOST=0.0.0.0
# Local object storage (generated images); docker-compose mounts a shared volume here.
RUN mkdir -p /var/lib/genq/objects && chown -R node:node /var/lib/genq
USER node
EXPOSE 3000
CMD ["node", "--import", "tsx", "apps/api/src/main.ts"]
