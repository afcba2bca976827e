import type { BatchView } from "../batch-view.ts";
import type { JobView } from "../job-view.ts";

const JOB_ID = "0193a5b0-7c1e-7d2a-9b3c-4d5e6f708192";
const BATCH_ID = "0193a5af-1d2e-7f3a-8b4c-5d6e7f809a1b";

/** A failed job just retried: queued again, its last error and its attempt count kept. */
export const RETRIED_JOB_EXAMPLE: JobView = {
  id: JOB_ID,
  object: "job",
  type: "text",
  status: "queued",
  priority: "normal",
  provider: null,
  model: null,
  progress: 0,
  attempts: 3,
  cancelRequested: false,
  input: { prompt: "Summarize the attached report in three bullet points." },
  metadata: { customer: "acme" },
  result: null,
  error: { code: "provider_unavailable", message: "every provider failed or was unavailable" },
  usage: null,
  costMicroUsd: null,
  priceVersion: null,
  createdAt: "2026-12-03T15:00:00.000Z",
  queuedAt: "2026-12-03T16:10:00.000Z",
  startedAt: null,
  finishedAt: null,
  batchId: null,
  itemIndex: null,
  webhook: null,
  links: { self: `/v1/jobs/${JOB_ID}`, cancel: `/v1/jobs/${JOB_ID}/cancel` },
};

/** A completed batch whose two failed items were just retried: running again. */
export const RETRIED_BATCH_EXAMPLE: BatchView = {
  id: BATCH_ID,
  object: "batch",
  type: "text",
  status: "running",
  priority: "normal",
  provider: null,
  model: null,
  metadata: null,
  webhook: null,
  tier: "online",
  cost: null,
  cancelRequested: false,
  counts: { total: 10, queued: 2, active: 0, completed: 8, failed: 0, canceled: 0 },
  progress: 80,
  invalidItems: [],
  createdAt: "2026-12-03T15:00:00.000Z",
  startedAt: "2026-12-03T15:00:01.000Z",
  finishedAt: null,
  etaSeconds: null,
  links: {
    self: `/v1/batches/${BATCH_ID}`,
    results: `/v1/batches/${BATCH_ID}/results`,
    resultsJsonl: `/v1/batches/${BATCH_ID}/results.jsonl`,
    failedItems: `/v1/batches/${BATCH_ID}/results?status=failed`,
    cancel: `/v1/batches/${BATCH_ID}/cancel`,
    events: `/v1/batches/${BATCH_ID}/events`,
  },
};

export const EXAMPLE_JOB_ID = JOB_ID;
