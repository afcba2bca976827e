import { timingSafeEqual } from "node:crypto";
import { GenqError } from "@genq/core";
import type { GenqMetrics } from "@genq/metrics";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import fastifyPlugin from "fastify-plugin";
import { sendError } from "./error-handler.ts";
import { type OperatorCredentials, requireOperator } from "./operator-auth.ts";

/** Options for {@link metricsPlugin}. */
export interface MetricsPluginOptions {
  metrics: GenqMetrics;
  /** The operator's credentials: HTTP Basic with them always reads /metrics. */
  operator: OperatorCredentials;
  /** A bearer token Prometheus may send instead (`GENQ_METRICS_TOKEN`); absent: Basic only. */
  token?: string | undefined;
}

/**
 * The `onRequest` check of /metrics: `Authorization: Bearer <token>` when a token
 * is configured, else (or for any other scheme) the operator's Basic credentials,
 * under the same failed-login limits. Metrics name queues, providers, models and
 * error rates: nothing an anonymous client should read.
 */
function requireScraper(options: MetricsPluginOptions) {
  const operator = requireOperator(options.operator);
  const expected = options.token === undefined ? undefined : Buffer.from(options.token);
  return async function checkScraper(request: FastifyRequest, reply: FastifyReply) {
    const header = request.headers.authorization;
    if (expected !== undefined && header !== undefined && /^Bearer\s+/i.test(header)) {
      const given = Buffer.from(header.replace(/^Bearer\s+/i, ""));
      if (given.length === expected.length && timingSafeEqual(given, expected)) return;
      return sendError(reply, new GenqError("unauthorized", "the metrics token is not valid"));
    }
    return operator(request, reply);
  };
}

/** BullMQ states counted as the queue's depth. */
const DEPTH_STATES = ["waiting", "prioritized", "delayed", "active"] as const;

/**
 * Prometheus metrics of the API at `GET /metrics`: requests by route and status
 * with latency, jobs accepted, quota rejections, and, read at scrape time, each
 * queue's depth by state and the age of its oldest waiting job. Scrapers
 * authenticate with the metrics token (Bearer) or the operator's Basic credentials.
 */
export const metricsPlugin = fastifyPlugin(
  async (app: FastifyInstance, options: MetricsPluginOptions) => {
    const { metrics } = options;
    app.addHook("onResponse", async (request, reply) => {
      // The route pattern, not the URL: ids must not become label values.
      const route = request.routeOptions.url ?? "unmatched";
      metrics.httpRequests.inc({ route, method: request.method, status: String(reply.statusCode) });
      metrics.httpDuration.observe({ route, method: request.method }, reply.elapsedTime / 1_000);
    });

    app.get(
      "/metrics",
      { schema: { hide: true }, onRequest: requireScraper(options) },
      async (_request, reply) => {
        await Promise.all(
          app.genq.queues.all().map(async (queue) => {
            try {
              const counts = await queue.getJobCounts(...DEPTH_STATES);
              for (const state of DEPTH_STATES)
                metrics.queueDepth.set({ queue: queue.name, state }, counts[state] ?? 0);
              const [oldest] = await queue.getJobs(["prioritized", "waiting"], 0, 0, true);
              metrics.oldestWaiting.set(
                { queue: queue.name },
                oldest === undefined ? 0 : (Date.now() - oldest.timestamp) / 1_000,
              );
            } catch {
              // Redis is down: the gauges keep their last values; /health/ready reports the outage.
            }
          }),
        );
        await observeProviderBatches(app, metrics);
        const { contentType, body } = await metrics.render();
        return reply.header("content-type", contentType).send(body);
      },
    );
  },
  { name: "genq-metrics", dependencies: ["genq-resources"] },
);

/** The economy tier's provider batches not ended yet, by provider and status (one indexed query). */
async function observeProviderBatches(app: FastifyInstance, metrics: GenqMetrics): Promise<void> {
  try {
    const rows = await app.genq.db.$queryRaw<Array<{ provider: string; status: string; n: number }>>`
      SELECT provider, status, count(*)::int AS n FROM provider_batches
       WHERE status IN ('submitting', 'running', 'canceling') GROUP BY provider, status`;
    // Reset first: a provider whose batches all ended reads 0, not its last count.
    metrics.providerBatchesOpen.reset();
    for (const row of rows)
      metrics.providerBatchesOpen.set({ provider: row.provider, status: row.status }, row.n);
  } catch {
    // PostgreSQL is unreachable: the gauge keeps its last values; /health/ready reports the outage.
  }
}
