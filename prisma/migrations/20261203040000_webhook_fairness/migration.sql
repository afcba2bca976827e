-- Webhook endpoints: per-item batch events are opt-in, and an endpoint that keeps
-- failing is disabled after a configured time (failing_since: the first failed
-- attempt after its last delivery).
ALTER TABLE "webhook_endpoints" ADD COLUMN     "batch_item_events" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN     "failing_since" TIMESTAMPTZ(3);

-- Events whose endpoint messages are written after the finishing transaction
-- committed, in bounded chunks (large transitions only).
CREATE TABLE "webhook_fanouts" (
    "id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "event_type" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "job_id" UUID,
    "batch_id" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "webhook_fanouts_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "webhook_fanouts_created_at_idx" ON "webhook_fanouts"("created_at");
