-- AlterTable
ALTER TABLE "jobs" ADD COLUMN     "postponed_since" TIMESTAMPTZ(3),
ADD COLUMN     "postponements" INTEGER NOT NULL DEFAULT 0;
