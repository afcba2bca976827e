-- The economy tier (issue 15): a batch may run on the providers' own batch APIs.
-- `tier`: 'online' (every item through the queues) or 'economy'.
ALTER TABLE "batches" ADD COLUMN "tier" TEXT NOT NULL DEFAULT 'online';

-- What the same tokens would have cost online; null: the cost itself (an online run).
ALTER TABLE "usage_records" ADD COLUMN "online_cost_micro_usd" BIGINT;

-- One batch submitted to a provider's batch API: items of one genq batch, one provider and model.
CREATE TABLE "provider_batches" (
    "id" UUID NOT NULL,
    "batch_id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "provider" TEXT NOT NULL,
    "model" TEXT NOT NULL,
    "key_id" TEXT NOT NULL,
    "external_id" TEXT,
    "status" TEXT NOT NULL DEFAULT 'submitting',
    "outcome" TEXT,
    "error_message" TEXT,
    "item_count" INTEGER NOT NULL,
    "polls" INTEGER NOT NULL DEFAULT 0,
    "next_poll_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lease_until" TIMESTAMPTZ(3),
    "cancel_sent" BOOLEAN NOT NULL DEFAULT false,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,
    "ended_at" TIMESTAMPTZ(3),

    CONSTRAINT "provider_batches_pkey" PRIMARY KEY ("id")
);

CREATE INDEX "provider_batches_status_next_poll_at_idx" ON "provider_batches"("status", "next_poll_at");
CREATE INDEX "provider_batches_batch_id_idx" ON "provider_batches"("batch_id");

ALTER TABLE "provider_batches" ADD CONSTRAINT "provider_batches_batch_id_fkey" FOREIGN KEY ("batch_id") REFERENCES "batches"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- The items of a provider batch, with the claimed attempt that fences their completion.
CREATE TABLE "provider_batch_items" (
    "provider_batch_id" UUID NOT NULL,
    "job_id" UUID NOT NULL,
    "attempt" INTEGER NOT NULL,

    CONSTRAINT "provider_batch_items_pkey" PRIMARY KEY ("provider_batch_id", "job_id")
);

CREATE INDEX "provider_batch_items_job_id_idx" ON "provider_batch_items"("job_id");

ALTER TABLE "provider_batch_items" ADD CONSTRAINT "provider_batch_items_provider_batch_id_fkey" FOREIGN KEY ("provider_batch_id") REFERENCES "provider_batches"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "provider_batch_items" ADD CONSTRAINT "provider_batch_items_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;
