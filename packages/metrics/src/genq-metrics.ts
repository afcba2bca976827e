import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/** Seconds buckets from 5 ms to 10 minutes: API latency, queue wait and run time. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/**
 * genq's Prometheus metrics. One instance per process, with its own registry
 * (so tests can build several); API and workers use the parts they feed.
 */
export class GenqMetrics {
  readonly registry = new Registry();

  readonly httpRequests = new Counter({
    name: "genq_http_requests_total",
    help: "HTTP requests by route, method and status code",
    labelNames: ["route", "method", "status"] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: "genq_http_request_duration_seconds",
    help: "HTTP request latency by route and method",
    labelNames: ["route", "method"] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  readonly jobsAccepted = new Counter({
    name: "genq_jobs_accepted_total",
    help: "Jobs accepted by the API, by type and priority",
    labelNames: ["type", "priority"] as const,
    registers: [this.registry],
  });
  readonly jobsFinished = new Counter({
    name: "genq_jobs_finished_total",
    help: "Job attempts finished by a worker, by type and outcome (completed, failed, retried, canceled, delayed)",
    labelNames: ["type", "outcome"] as const,
    registers: [this.registry],
  });
  readonly jobWait = new Histogram({
    name: "genq_job_wait_seconds",
    help: "Time from enqueue to a worker starting the job",
    labelNames: ["type"] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  readonly jobRun = new Histogram({
    name: "genq_job_run_seconds",
    help: "Time a worker spent on one attempt",
    labelNames: ["type"] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: "genq_queue_jobs",
    help: "Jobs in each queue by BullMQ state (waiting, prioritized, delayed, active)",
    labelNames: ["queue", "state"] as const,
    registers: [this.registry],
  });
  readonly oldestWaiting = new Gauge({
    name: "genq_queue_oldest_waiting_seconds",
    help: "Age of the oldest job waiting in each queue",
    labelNames: ["queue"] as const,
    registers: [this.registry],
  });
  readonly providerCalls = new Counter({
    name: "genq_provider_calls_total",
    help: "Provider calls by provider, model and outcome (ok, or the error code; skipped targets included)",
    labelNames: ["provider", "model", "outcome"] as const,
    registers: [this.registry],
  });
  readonly providerLatency = new Histogram({
    name: "genq_provider_call_duration_seconds",
    help: "Provider call latency by provider and model",
    labelNames: ["provider", "model"] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  readonly providerTokens = new Counter({
    name: "genq_provider_tokens_total",
    help: "Tokens by provider, model and direction (input, output)",
    labelNames: ["provider", "model", "direction"] as const,
    registers: [this.registry],
  });
  readonly providerCost = new Counter({
    name: "genq_provider_cost_micro_usd_total",
    help: "Cost of completed jobs in micro-USD, by provider and model",
    labelNames: ["provider", "model"] as const,
    registers: [this.registry],
  });
  readonly quotaRejections = new Counter({
    name: "genq_quota_rejections_total",
    help: "Jobs refused or failed for quota, by where (submit, worker)",
    labelNames: ["where"] as const,
    registers: [this.registry],
  });
  readonly quotaSettlementExcess = new Counter({
    name: "genq_quota_settlement_excess_total",
    help: "Usage providers reported beyond a job's reservation, not charged to the user, by kind (text_tokens, images, cost_micro_usd)",
    labelNames: ["kind"] as const,
    registers: [this.registry],
  });
  readonly resultCache = new Counter({
    name: "genq_result_cache_lookups_total",
    help: "Result cache lookups of deterministic text jobs by outcome (hit, miss)",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });
  readonly circuitState = new Gauge({
    name: "genq_circuit_open",
    help: "1 when the circuit of a provider/model is open or half-open, else 0",
    labelNames: ["provider", "model", "state"] as const,
    registers: [this.registry],
  });

  readonly providerBatches = new Counter({
    name: "genq_provider_batches_total",
    help: "Economy-tier provider batches by provider and outcome: submitted, then completed, expired, canceled, failed (refused), interrupted (the submission was cut off and its items fell back), recovered (a cut-off submission found at the provider) or abandoned (accepted after its submission was given up; canceled)",
    labelNames: ["provider", "outcome"] as const,
    registers: [this.registry],
  });
  readonly providerBatchItems = new Counter({
    name: "genq_provider_batch_items_total",
    help: "Items of ended economy-tier provider batches by provider and outcome (succeeded, errored, unfinished: fell back or were canceled)",
    labelNames: ["provider", "outcome"] as const,
    registers: [this.registry],
  });
  readonly providerBatchesOpen = new Gauge({
    name: "genq_provider_batches_open",
    help: "Economy-tier provider batches not ended yet, by provider and status (submitting, running, canceling); read at scrape",
    labelNames: ["provider", "status"] as const,
    registers: [this.registry],
  });

  readonly webhookDeliveries = new Counter({
    name: "genq_webhook_deliveries_total",
    help: "Webhook delivery attempts by outcome (delivered, failed, timeout, refused, error)",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });
  readonly webhookDeliveryDuration = new Histogram({
    name: "genq_webhook_delivery_duration_seconds",
    help: "Time one webhook delivery attempt took, answer or not",
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  readonly webhookSlotWaits = new Counter({
    name: "genq_webhook_slot_waits_total",
    help: "Webhook deliveries put back because their tenant or endpoint had no free delivery slot",
    registers: [this.registry],
  });
  readonly webhookEndpointsDisabled = new Counter({
    name: "genq_webhook_endpoints_disabled_total",
    help: "Webhook endpoints disabled by delivery, by reason (gone: 410, failing: failed for the configured time)",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });

  constructor(options: { process: "api" | "worker"; defaultMetrics?: boolean }) {
    this.registry.setDefaultLabels({ process: options.process });
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: "genq_" });
  }

  /** The Prometheus text exposition. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
