-- CreateEnum
CREATE TYPE "BatchStatus" AS ENUM ('running', 'completed', 'canceled');

-- AlterTable
ALTER TABLE "jobs" ADD COLUMN     "batch_id" UUID,
ADD COLUMN     "dispatched_at" TIMESTAMPTZ(3) DEFAULT CURRENT_TIMESTAMP,
ADD COLUMN     "item_index" INTEGER,
ADD COLUMN     "webhook_url" TEXT;

-- AlterTable
ALTER TABLE "users" ADD COLUMN     "webhook_previous_secret" TEXT,
ADD COLUMN     "webhook_previous_secret_expires_at" TIMESTAMPTZ(3),
ADD COLUMN     "webhook_secret" TEXT;

-- CreateTable
CREATE TABLE "batches" (
    "id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "type" "JobType" NOT NULL,
    "status" "BatchStatus" NOT NULL DEFAULT 'running',
    "priority" INTEGER NOT NULL,
    "provider" TEXT,
    "model" TEXT,
    "metadata" JSONB,
    "webhook_url" TEXT,
    "total" INTEGER NOT NULL,
    "invalid_items" JSONB,
    "dispatch_cursor" INTEGER NOT NULL DEFAULT 0,
    "dispatched_count" INTEGER NOT NULL DEFAULT 0,
    "completed_count" INTEGER NOT NULL DEFAULT 0,
    "failed_count" INTEGER NOT NULL DEFAULT 0,
    "canceled_count" INTEGER NOT NULL DEFAULT 0,
    "cancel_requested" BOOLEAN NOT NULL DEFAULT false,
    "idempotency_key" TEXT,
    "request_hash" TEXT,
    "progress_event_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "started_at" TIMESTAMPTZ(3),
    "finished_at" TIMESTAMPTZ(3),
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "batches_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "webhook_endpoints" (
    "id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "url" TEXT NOT NULL,
    "description" TEXT,
    "event_types" TEXT[],
    "secret" TEXT NOT NULL,
    "previous_secret" TEXT,
    "previous_secret_expires_at" TIMESTAMPTZ(3),
    "disabled_at" TIMESTAMPTZ(3),
    "disabled_reason" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "webhook_endpoints_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "webhook_messages" (
    "id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "endpoint_id" UUID,
    "url" TEXT,
    "event_type" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "job_id" UUID,
    "batch_id" UUID,
    "status" TEXT NOT NULL DEFAULT 'pending',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "next_attempt_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_attempt_at" TIMESTAMPTZ(3),
    "delivered_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "webhook_messages_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "webhook_deliveries" (
    "id" UUID NOT NULL,
    "message_id" UUID NOT NULL,
    "attempt" INTEGER NOT NULL,
    "response_status" INTEGER,
    "outcome" TEXT NOT NULL,
    "latency_ms" INTEGER NOT NULL,
    "response_excerpt" TEXT,
    "error_message" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "webhook_deliveries_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "batches_user_id_id_idx" ON "batches"("user_id", "id" DESC);

-- CreateIndex
CREATE INDEX "batches_status_created_at_idx" ON "batches"("status", "created_at");

-- CreateIndex
CREATE UNIQUE INDEX "batches_user_id_idempotency_key_key" ON "batches"("user_id", "idempotency_key");

-- CreateIndex
CREATE INDEX "webhook_endpoints_user_id_idx" ON "webhook_endpoints"("user_id");

-- CreateIndex
CREATE INDEX "webhook_messages_status_next_attempt_at_idx" ON "webhook_messages"("status", "next_attempt_at");

-- CreateIndex
CREATE INDEX "webhook_messages_user_id_id_idx" ON "webhook_messages"("user_id", "id" DESC);

-- CreateIndex
CREATE INDEX "webhook_messages_endpoint_id_id_idx" ON "webhook_messages"("endpoint_id", "id" DESC);

-- CreateIndex
CREATE UNIQUE INDEX "webhook_deliveries_message_id_attempt_key" ON "webhook_deliveries"("message_id", "attempt");

-- CreateIndex
CREATE INDEX "jobs_batch_id_status_idx" ON "jobs"("batch_id", "status");

-- CreateIndex
CREATE UNIQUE INDEX "jobs_batch_id_item_index_key" ON "jobs"("batch_id", "item_index");

-- AddForeignKey
ALTER TABLE "jobs" ADD CONSTRAINT "jobs_batch_id_fkey" FOREIGN KEY ("batch_id") REFERENCES "batches"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "batches" ADD CONSTRAINT "batches_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "webhook_endpoints" ADD CONSTRAINT "webhook_endpoints_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "webhook_messages" ADD CONSTRAINT "webhook_messages_endpoint_id_fkey" FOREIGN KEY ("endpoint_id") REFERENCES "webhook_endpoints"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_message_id_fkey" FOREIGN KEY ("message_id") REFERENCES "webhook_messages"("id") ON DELETE CASCADE ON UPDATE CASCADE;
