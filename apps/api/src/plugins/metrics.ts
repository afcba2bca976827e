import type { GenqMetrics } from "@genq/metrics";
import type { FastifyInstance } from "fastify";
import fastifyPlugin from "fastify-plugin";

/** BullMQ states counted as the queue's depth. */
const DEPTH_STATES = ["waiting", "prioritized", "delayed", "active"] as const;

/**
 * Prometheus metrics of the API at `GET /metrics`: requests by route and status
 * with latency, jobs accepted, quota rejections, and, read at scrape time, each
 * queue's depth by state and the age of its oldest waiting job.
 */
export const metricsPlugin = fastifyPlugin(
  async (app: FastifyInstance, options: { metrics: GenqMetrics }) => {
    const { metrics } = options;
    app.addHook("onResponse", async (request, reply) => {
      // The route pattern, not the URL: ids must not become label values.
      const route = request.routeOptions.url ?? "unmatched";
      metrics.httpRequests.inc({ route, method: request.method, status: String(reply.statusCode) });
      metrics.httpDuration.observe({ route, method: request.method }, reply.elapsedTime / 1_000);
    });

    app.get("/metrics", { schema: { hide: true } }, async (_request, reply) => {
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
      const { contentType, body } = await metrics.render();
      return reply.header("content-type", contentType).send(body);
    });
  },
  { name: "genq-metrics", dependencies: ["genq-resources"] },
);
