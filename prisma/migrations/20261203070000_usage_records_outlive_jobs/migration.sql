-- Usage records are the billing history: they outlive the jobs that produced them,
-- which the retention task deletes. Each record keeps its job's type, so usage
-- reports no longer join jobs.

-- AlterTable
ALTER TABLE "usage_records" ADD COLUMN "job_type" "JobType";
UPDATE "usage_records" AS u SET "job_type" = j."type" FROM "jobs" AS j WHERE j."id" = u."job_id";
ALTER TABLE "usage_records" ALTER COLUMN "job_type" SET NOT NULL;

-- DropForeignKey
ALTER TABLE "usage_records" DROP CONSTRAINT "usage_records_job_id_fkey";
