-- AlterTable
ALTER TABLE "usage_records" ADD COLUMN     "images" INTEGER NOT NULL DEFAULT 0;

-- AlterTable
ALTER TABLE "users" ADD COLUMN     "image_limit" INTEGER,
ADD COLUMN     "monthly_budget_micro_usd" BIGINT,
ADD COLUMN     "text_token_limit" BIGINT;

-- CreateTable
CREATE TABLE "quota_usage" (
    "user_id" UUID NOT NULL,
    "period_start" DATE NOT NULL,
    "kind" TEXT NOT NULL,
    "used" BIGINT NOT NULL DEFAULT 0,
    "reserved" BIGINT NOT NULL DEFAULT 0,

    CONSTRAINT "quota_usage_pkey" PRIMARY KEY ("user_id","period_start","kind")
);

-- CreateTable
CREATE TABLE "quota_reservations" (
    "job_id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "period_start" DATE NOT NULL,
    "text_tokens" BIGINT NOT NULL DEFAULT 0,
    "images" INTEGER NOT NULL DEFAULT 0,
    "cost_micro_usd" BIGINT NOT NULL DEFAULT 0,
    "status" TEXT NOT NULL DEFAULT 'reserved',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "settled_at" TIMESTAMPTZ(3),
    "released_at" TIMESTAMPTZ(3),

    CONSTRAINT "quota_reservations_pkey" PRIMARY KEY ("job_id")
);

-- CreateIndex
CREATE INDEX "quota_reservations_status_created_at_idx" ON "quota_reservations"("status", "created_at");

-- AddForeignKey
ALTER TABLE "quota_usage" ADD CONSTRAINT "quota_usage_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "quota_reservations" ADD CONSTRAINT "quota_reservations_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;
