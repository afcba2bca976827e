-- The OpenAI-compatible Files and Batches API (/openai/v1, docs/decisions/0021).
--
-- An input file's bytes are in object storage (`key`); what the upload's line-by-line
-- check found is kept here (`invalid_lines`, the first 1,000, and `invalid_count`).
-- Output and error files have no bytes: they are rendered from the items of the genq
-- batch of `openai_batch_id` when read.
CREATE TABLE "openai_files" (
    "id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "purpose" TEXT NOT NULL,
    "filename" TEXT NOT NULL,
    "bytes" BIGINT NOT NULL,
    "key" TEXT,
    "line_count" INTEGER NOT NULL DEFAULT 0,
    "invalid_count" INTEGER NOT NULL DEFAULT 0,
    "invalid_lines" JSONB,
    "openai_batch_id" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3),

    CONSTRAINT "openai_files_pkey" PRIMARY KEY ("id")
);

CREATE INDEX "openai_files_user_id_id_idx" ON "openai_files"("user_id", "id");

ALTER TABLE "openai_files" ADD CONSTRAINT "openai_files_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- An OpenAI batch: its requests run as the items of the genq batch `batch_id` (null
-- when it failed validation). `status` is stored for the states genq's batch does not
-- carry (validating, failed, the final ones); the others are read from the genq batch.
CREATE TABLE "openai_batches" (
    "id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "batch_id" UUID,
    "input_file_id" UUID NOT NULL,
    "endpoint" TEXT NOT NULL,
    "completion_window" TEXT NOT NULL,
    "metadata" JSONB,
    "status" TEXT NOT NULL,
    "errors" JSONB,
    "output_file_id" UUID,
    "error_file_id" UUID,
    "expire_requested" BOOLEAN NOT NULL DEFAULT false,
    "total" INTEGER NOT NULL DEFAULT 0,
    "completed" INTEGER NOT NULL DEFAULT 0,
    "failed" INTEGER NOT NULL DEFAULT 0,
    "input_tokens" BIGINT NOT NULL DEFAULT 0,
    "output_tokens" BIGINT NOT NULL DEFAULT 0,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "in_progress_at" TIMESTAMPTZ(3),
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "finalizing_at" TIMESTAMPTZ(3),
    "completed_at" TIMESTAMPTZ(3),
    "failed_at" TIMESTAMPTZ(3),
    "expired_at" TIMESTAMPTZ(3),
    "cancelling_at" TIMESTAMPTZ(3),
    "cancelled_at" TIMESTAMPTZ(3),

    CONSTRAINT "openai_batches_pkey" PRIMARY KEY ("id")
);

CREATE UNIQUE INDEX "openai_batches_batch_id_key" ON "openai_batches"("batch_id");
CREATE INDEX "openai_batches_user_id_id_idx" ON "openai_batches"("user_id", "id");

ALTER TABLE "openai_batches" ADD CONSTRAINT "openai_batches_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "openai_batches" ADD CONSTRAINT "openai_batches_batch_id_fkey" FOREIGN KEY ("batch_id") REFERENCES "batches"("id") ON DELETE SET NULL ON UPDATE CASCADE;
