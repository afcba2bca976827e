-- Webhook endpoints: per-item batch events are opt-in, and an endpoint that keeps
-- failing is disabled after a configured time (failing_since: the first failed
-- attempt after its last delivery).
ALTER TABLE "webhook_endpoints" ADD COLUMN     "batch_item_events" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN     "failing_since" TIMESTAMPTZ(3);
