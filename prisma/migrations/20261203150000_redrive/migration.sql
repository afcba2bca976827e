-- Redrive of one failed job in one round trip (issue 16): the job goes back to 'queued'
-- with a quota hold taken anew exactly as admit_job takes a new submission's (decision
-- 0015), and, for a batch item, its batch counts it as pending again (a completed batch
-- runs again). Called by @genq/lifecycle's JobLifecycle.redrive; decision 0024.
--
-- Locks: the job row first, then the user's quota_usage rows (hold_quota_kinds, in
-- LOCK_ORDER), then the batch row: the order every finishing transaction takes them in
-- (job, holds released, batch counters), so a redrive and a finish cannot deadlock.
--
-- History is kept: `attempts` is not reset (the next claim numbers its attempt after the
-- earlier ones, so their provider calls stay filed under their own numbers), nor are
-- `postponements` or the last error (on a queued job it tells why the last attempt
-- failed, as after a retry). What is reset is this run's state: the postponement clock,
-- progress, result, timestamps and the cancel flag.
--
-- Outcomes: 'redriven' (job = the row now), 'not_found' (absent, or not the given
-- owner's), 'not_failed' (detail = {status}), 'batch_canceled' (the job's batch was
-- canceled: its items are not run again), 'quota_exceeded' (detail = {kind, used,
-- reserved, limit, requested}; nothing was written).
CREATE FUNCTION redrive_job(
    p_job_id uuid,
    -- The owner, for a user's own retry; null for an operator's redrive.
    p_user_id uuid,
    -- The output cap the new run's calls send (text jobs); null keeps the row's.
    p_reserved_output_tokens integer,
    -- Null: hold nothing (no quota configured). Else as admit_job's.
    p_period_start date,
    p_plan_limits jsonb,
    p_text_tokens bigint,
    p_images integer,
    p_cost_micro_usd bigint,
    p_byo_providers text[]
) RETURNS TABLE (outcome text, job json, detail json)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_job jobs;
    v_limits bigint[];
    v_amounts bigint[] := ARRAY[p_text_tokens, p_images::bigint, p_cost_micro_usd];
    v_refused json;
    v_hold boolean := p_period_start IS NOT NULL;
    v_batch_canceled boolean;
BEGIN
    SELECT * INTO v_job FROM jobs j
     WHERE j.id = p_job_id AND (p_user_id IS NULL OR j.user_id = p_user_id)
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found'::text, NULL::json, NULL::json;
        RETURN;
    END IF;
    IF v_job.status <> 'failed' THEN
        RETURN QUERY SELECT 'not_failed'::text, NULL::json, json_build_object('status', v_job.status);
        RETURN;
    END IF;
    IF v_job.batch_id IS NOT NULL THEN
        SELECT b.cancel_requested INTO v_batch_canceled FROM batches b WHERE b.id = v_job.batch_id;
        IF v_batch_canceled THEN
            RETURN QUERY SELECT 'batch_canceled'::text, NULL::json, json_build_object('batchId', v_job.batch_id);
            RETURN;
        END IF;
    END IF;

    -- A reservation still 'reserved' (none should be: failing released it) is kept as the hold.
    IF v_hold AND EXISTS (SELECT 1 FROM quota_reservations r WHERE r.job_id = p_job_id AND r.status = 'reserved') THEN
        v_hold := false;
    END IF;
    IF v_hold THEN
        SELECT ARRAY[coalesce(u.text_token_limit, (p_plan_limits -> u.plan::text ->> 'textTokens')::bigint),
                     coalesce(u.image_limit::bigint, (p_plan_limits -> u.plan::text ->> 'images')::bigint),
                     coalesce(u.monthly_budget_micro_usd,
                              (p_plan_limits -> u.plan::text ->> 'monthlyBudgetMicroUsd')::bigint)]
          INTO v_limits
          FROM users u WHERE u.id = v_job.user_id;
        IF p_byo_providers IS NOT NULL AND cardinality(p_byo_providers) > 0
           AND (SELECT count(DISTINCT k.provider) FROM user_provider_keys k
                 WHERE k.user_id = v_job.user_id AND k.provider = ANY (p_byo_providers))
               = cardinality(p_byo_providers) THEN
            v_hold := false;
        END IF;
    END IF;
    IF v_hold THEN
        v_refused := hold_quota_kinds(v_job.user_id, p_period_start, v_limits, v_amounts);
        IF v_refused IS NOT NULL THEN
            RETURN QUERY SELECT 'quota_exceeded'::text, NULL::json, v_refused;
            RETURN;
        END IF;
        INSERT INTO quota_reservations AS r
               (job_id, user_id, period_start, text_tokens, images, cost_micro_usd, status, created_at)
        VALUES (p_job_id, v_job.user_id, p_period_start, p_text_tokens, p_images, p_cost_micro_usd,
                'reserved', now())
        ON CONFLICT (job_id) DO UPDATE
           SET period_start = EXCLUDED.period_start, text_tokens = EXCLUDED.text_tokens,
               images = EXCLUDED.images, cost_micro_usd = EXCLUDED.cost_micro_usd,
               status = 'reserved', created_at = EXCLUDED.created_at, settled_at = NULL, released_at = NULL;
    END IF;

    UPDATE jobs j
       SET status = 'queued', cancel_requested = false, progress = 0, result = NULL,
           postponed_since = NULL, started_at = NULL, finished_at = NULL,
           queued_at = now(), dispatched_at = now(),
           reserved_output_tokens = coalesce(p_reserved_output_tokens, j.reserved_output_tokens),
           updated_at = now()
     WHERE j.id = p_job_id
    RETURNING * INTO v_job;

    IF v_job.batch_id IS NOT NULL THEN
        -- The item counts as pending again; a batch that had completed runs again and
        -- completes (with a new batch.completed event) when its last item finishes.
        UPDATE batches b
           SET failed_count = b.failed_count - 1, status = 'running', finished_at = NULL, updated_at = now()
         WHERE b.id = v_job.batch_id;
    END IF;
    RETURN QUERY SELECT 'redriven'::text, row_to_json(v_job), NULL::json;
END;
$$;
