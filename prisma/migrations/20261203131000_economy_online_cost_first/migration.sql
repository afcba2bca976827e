-- What an economy item would have cost online, written before the item completes, so a
-- batch view read the moment the batch completes already shows the saving (decision 0022).
ALTER TABLE "provider_batch_items" ADD COLUMN "online_cost_micro_usd" BIGINT;
