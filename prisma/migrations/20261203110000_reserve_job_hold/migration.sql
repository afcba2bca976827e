-- A worker's quota hold for a job that holds none yet (a batch item, a job whose hold was
-- resolved), in one round trip: what QuotaLedger.reserve did in an interactive transaction.
-- Called by @genq/quota's QuotaLedger.reserve.
--
-- Idempotent per job: a job holding a 'reserved' (or 'settled') reservation keeps it; a
-- 'released' one is held again with the new amounts. The kinds are held by
-- hold_quota_kinds, as admit_job holds them; a kind that does not fit puts the
-- reservation row back as it was and returns 'quota_exceeded' (no exception, so nothing
-- is logged).
--
-- Outcomes: 'reserved' | 'already_reserved' | 'already_settled' (reservation = the row),
-- 'quota_exceeded' (detail = {kind, used, reserved, limit, requested}), 'job_missing'.
CREATE FUNCTION reserve_job_hold(
    p_job_id uuid,
    p_user_id uuid,
    p_period_start date,
    p_now timestamptz,
    -- {"basic": {"textTokens": n, "images": n, "monthlyBudgetMicroUsd": n|null}, ...}
    p_plan_limits jsonb,
    p_text_tokens bigint,
    p_images integer,
    p_cost_micro_usd bigint
) RETURNS TABLE (outcome text, reservation json, detail json)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_limits bigint[];
    v_amounts bigint[] := ARRAY[p_text_tokens, p_images::bigint, p_cost_micro_usd];
    v_refused json;
    v_revived boolean;
    v_row quota_reservations;
BEGIN
    SELECT ARRAY[coalesce(u.text_token_limit, (p_plan_limits -> u.plan::text ->> 'textTokens')::bigint),
                 coalesce(u.image_limit::bigint, (p_plan_limits -> u.plan::text ->> 'images')::bigint),
                 coalesce(u.monthly_budget_micro_usd,
                          (p_plan_limits -> u.plan::text ->> 'monthlyBudgetMicroUsd')::bigint)]
      INTO v_limits
      FROM jobs j JOIN users u ON u.id = j.user_id
     WHERE j.id = p_job_id AND j.user_id = p_user_id;
    IF v_limits IS NULL THEN
        RETURN QUERY SELECT 'job_missing'::text, NULL::json, NULL::json;
        RETURN;
    END IF;

    -- A new reservation, or a released one revived; the conflict branch locks an existing
    -- row, so two deliveries of one job serialize here and the second sees the first's.
    INSERT INTO quota_reservations AS r
           (job_id, user_id, period_start, text_tokens, images, cost_micro_usd, status, created_at)
    VALUES (p_job_id, p_user_id, p_period_start, p_text_tokens, p_images, p_cost_micro_usd, 'reserved', p_now)
    ON CONFLICT (job_id) DO UPDATE
       SET period_start = EXCLUDED.period_start, text_tokens = EXCLUDED.text_tokens,
           images = EXCLUDED.images, cost_micro_usd = EXCLUDED.cost_micro_usd,
           status = 'reserved', created_at = EXCLUDED.created_at, settled_at = NULL, released_at = NULL
     WHERE r.status = 'released'
    RETURNING (xmax <> 0) INTO v_revived;
    IF NOT FOUND THEN
        SELECT * INTO v_row FROM quota_reservations WHERE job_id = p_job_id;
        RETURN QUERY SELECT CASE WHEN v_row.status = 'settled' THEN 'already_settled' ELSE 'already_reserved' END,
                            row_to_json(v_row), NULL::json;
        RETURN;
    END IF;

    v_refused := hold_quota_kinds(p_user_id, p_period_start, v_limits, v_amounts);
    IF v_refused IS NOT NULL THEN
        IF v_revived THEN
            UPDATE quota_reservations SET status = 'released', released_at = p_now WHERE job_id = p_job_id;
        ELSE
            DELETE FROM quota_reservations WHERE job_id = p_job_id;
        END IF;
        RETURN QUERY SELECT 'quota_exceeded'::text, NULL::json, v_refused;
        RETURN;
    END IF;

    SELECT * INTO v_row FROM quota_reservations WHERE job_id = p_job_id;
    RETURN QUERY SELECT 'reserved'::text, row_to_json(v_row), NULL::json;
END;
$$;
