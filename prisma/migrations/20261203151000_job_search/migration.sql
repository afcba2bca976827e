-- Indexes of job search, the dead-letter view, the provider call log and usage trends
-- (issue 16; @genq/db job-search.ts, call-log.ts). Measured at 1M jobs by `pnpm bench`
-- (S1, docs/benchmarks.md).

-- Metadata containment (`metadata @> '{"k":"v"}'`): jsonb_path_ops is smaller and faster
-- than the default operator class for @>, the only operator the search uses.
CREATE INDEX "jobs_metadata_idx" ON "jobs" USING GIN ("metadata" jsonb_path_ops);

-- A user's jobs in a time range.
CREATE INDEX "jobs_user_id_created_at_idx" ON "jobs" ("user_id", "created_at");

-- Operators' views across users: by status (dead letters: status = 'failed'), newest
-- first, and by error code.
CREATE INDEX "jobs_status_id_idx" ON "jobs" ("status", "id" DESC);
CREATE INDEX "jobs_error_code_id_idx" ON "jobs" ("error_code", "id" DESC);
-- An error code implies a status (mostly 'failed'): without this the planner multiplies
-- the two selectivities, expects a handful of rows and reads every row of the code through
-- a bitmap (50 ms at 300,000 jobs) instead of walking (error_code, id) newest first (0.1 ms).
CREATE STATISTICS "jobs_status_error_code_stats" (dependencies, mcv) ON "status", "error_code" FROM "jobs";

-- The provider call log, newest first, and by key.
CREATE INDEX "provider_calls_started_at_idx" ON "provider_calls" ("started_at" DESC);
CREATE INDEX "provider_calls_key_id_started_at_idx" ON "provider_calls" ("key_id", "started_at" DESC);

-- Daily usage and cost trends.
CREATE INDEX "usage_records_created_at_idx" ON "usage_records" ("created_at");
