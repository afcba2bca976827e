-- The output cap a job's calls send, fixed when its quota hold is taken (at admission):
-- the hold covers exactly this much output, so no call can use more than is held.
ALTER TABLE "jobs" ADD COLUMN "reserved_output_tokens" INTEGER;
