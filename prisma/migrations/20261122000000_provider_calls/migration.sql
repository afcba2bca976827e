-- AlterTable
ALTER TABLE "jobs" ADD COLUMN     "price_version" TEXT;

-- AlterTable
ALTER TABLE "usage_records" ADD COLUMN     "cached_input_tokens" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "key_id" TEXT,
ADD COLUMN     "price_version" TEXT,
ADD COLUMN     "reasoning_tokens" INTEGER NOT NULL DEFAULT 0;

-- CreateTable
CREATE TABLE "provider_calls" (
    "id" UUID NOT NULL,
    "job_id" UUID NOT NULL,
    "job_attempt" INTEGER NOT NULL,
    "seq" INTEGER NOT NULL,
    "provider" TEXT NOT NULL,
    "model" TEXT NOT NULL,
    "key_id" TEXT,
    "started_at" TIMESTAMPTZ(3) NOT NULL,
    "latency_ms" INTEGER NOT NULL,
    "outcome" TEXT NOT NULL,
    "error_code" TEXT,
    "error_message" TEXT,
    "input_tokens" INTEGER,
    "output_tokens" INTEGER,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "provider_calls_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "provider_calls_provider_model_started_at_idx" ON "provider_calls"("provider", "model", "started_at");

-- CreateIndex
CREATE UNIQUE INDEX "provider_calls_job_id_job_attempt_seq_key" ON "provider_calls"("job_id", "job_attempt", "seq");

-- AddForeignKey
ALTER TABLE "provider_calls" ADD CONSTRAINT "provider_calls_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;
