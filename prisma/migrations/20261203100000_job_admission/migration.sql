-- Admission of one job in one round trip (POST /v1/jobs): the idempotency lookup, the
-- quota hold and the insert, all or nothing. Called by @genq/db's JobAdmission.
--
-- The hold is what QuotaLedger.reserve makes: a 'reserved' quota_reservations row keyed
-- by the job id, plus quota_usage.reserved of each kind, each taken by an upsert whose
-- condition (used + reserved + n <= limit) Postgres re-checks on the latest row version
-- after waiting for its lock, in LOCK_ORDER (text_tokens, images, cost_micro_usd), so
-- concurrent admissions and worker reservations can neither overshoot nor deadlock.
-- A refusal gives back what it held and returns 'quota_exceeded' (no exception: a
-- client over its quota must not fill the server log).
--
-- Outcomes: 'created' (job = the new row), 'repeated' (job = the row an earlier request
-- made under the idempotency key; the caller compares request_hash), 'quota_exceeded'
-- (detail = {kind, used, reserved, limit, requested}), 'user_missing'.
CREATE FUNCTION admit_job(
    p_id uuid,
    p_user_id uuid,
    p_type "JobType",
    p_priority integer,
    p_provider text,
    p_model text,
    p_input jsonb,
    p_metadata jsonb,
    p_webhook_url text,
    p_idempotency_key text,
    p_request_hash text,
    p_reserved_output_tokens integer,
    -- Null: hold nothing (no quota configured). Else the month held in and the limits
    -- per plan: {"basic": {"textTokens": n, "images": n, "monthlyBudgetMicroUsd": n|null}, ...}.
    p_period_start date,
    p_plan_limits jsonb,
    p_text_tokens bigint,
    p_images integer,
    p_cost_micro_usd bigint,
    -- Every provider the job may run on, when all of them accept users' own keys: a
    -- user with a key for each holds nothing (the job cannot touch a system key).
    p_byo_providers text[]
) RETURNS TABLE (outcome text, job json, detail json)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_job jobs;
    v_plan text;
    v_limits bigint[];
    v_amounts bigint[] := ARRAY[p_text_tokens, p_images::bigint, p_cost_micro_usd];
    v_kinds text[] := ARRAY['text_tokens', 'images', 'cost_micro_usd'];
    v_refused json;
    v_hold boolean := p_period_start IS NOT NULL;
BEGIN
    IF p_idempotency_key IS NOT NULL THEN
        SELECT * INTO v_job FROM jobs WHERE user_id = p_user_id AND idempotency_key = p_idempotency_key;
        IF FOUND THEN
            RETURN QUERY SELECT 'repeated'::text, row_to_json(v_job), NULL::json;
            RETURN;
        END IF;
    END IF;

    IF v_hold THEN
        SELECT u.plan::text,
               ARRAY[coalesce(u.text_token_limit, (p_plan_limits -> u.plan::text ->> 'textTokens')::bigint),
                     coalesce(u.image_limit::bigint, (p_plan_limits -> u.plan::text ->> 'images')::bigint),
                     coalesce(u.monthly_budget_micro_usd,
                              (p_plan_limits -> u.plan::text ->> 'monthlyBudgetMicroUsd')::bigint)]
          INTO v_plan, v_limits
          FROM users u WHERE u.id = p_user_id;
        IF v_plan IS NULL THEN
            RETURN QUERY SELECT 'user_missing'::text, NULL::json, NULL::json;
            RETURN;
        END IF;
        IF p_byo_providers IS NOT NULL AND cardinality(p_byo_providers) > 0
           AND (SELECT count(DISTINCT k.provider) FROM user_provider_keys k
                 WHERE k.user_id = p_user_id AND k.provider = ANY (p_byo_providers))
               = cardinality(p_byo_providers) THEN
            v_hold := false;
        END IF;
    END IF;

    IF v_hold THEN
        v_refused := hold_quota_kinds(p_user_id, p_period_start, v_limits, v_amounts);
        IF v_refused IS NOT NULL THEN
            -- A concurrent request under the same key may have taken the room this one
            -- waited for: committed now (this statement waited for its lock), it makes this one
            -- a replay, answered as such rather than refused.
            IF p_idempotency_key IS NOT NULL THEN
                SELECT * INTO v_job FROM jobs
                 WHERE user_id = p_user_id AND idempotency_key = p_idempotency_key;
                IF FOUND THEN
                    RETURN QUERY SELECT 'repeated'::text, row_to_json(v_job), NULL::json;
                    RETURN;
                END IF;
            END IF;
            RETURN QUERY SELECT 'quota_exceeded'::text, NULL::json, v_refused;
            RETURN;
        END IF;
    END IF;

    INSERT INTO jobs AS j (id, user_id, type, status, priority, provider, model, input, metadata,
                           idempotency_key, request_hash, webhook_url, reserved_output_tokens, updated_at)
    VALUES (p_id, p_user_id, p_type, 'queued', p_priority, p_provider, p_model, p_input, p_metadata,
            p_idempotency_key, p_request_hash, p_webhook_url, p_reserved_output_tokens, now())
    ON CONFLICT (user_id, idempotency_key) DO NOTHING
    RETURNING * INTO v_job;
    IF NOT FOUND THEN
        -- A concurrent request under the same key committed first: this one is its replay.
        IF v_hold THEN
            PERFORM admit_job_give_back(p_user_id, p_period_start, v_kinds, v_amounts);
        END IF;
        SELECT * INTO v_job FROM jobs WHERE user_id = p_user_id AND idempotency_key = p_idempotency_key;
        RETURN QUERY SELECT 'repeated'::text, row_to_json(v_job), NULL::json;
        RETURN;
    END IF;

    IF v_hold THEN
        INSERT INTO quota_reservations (job_id, user_id, period_start, text_tokens, images, cost_micro_usd,
                                        status, created_at)
        VALUES (p_id, p_user_id, p_period_start, p_text_tokens, p_images, p_cost_micro_usd, 'reserved', now());
    END IF;
    RETURN QUERY SELECT 'created'::text, row_to_json(v_job), NULL::json;
END;
$$;

-- Gives back holds admit_job took before it refused (rows already locked by this
-- transaction, in LOCK_ORDER, so this takes no new lock).
CREATE FUNCTION admit_job_give_back(p_user_id uuid, p_period_start date, p_kinds text[], p_amounts bigint[])
RETURNS void LANGUAGE sql VOLATILE AS $$
    UPDATE quota_usage q SET reserved = q.reserved - h.amount
      FROM unnest(p_kinds, p_amounts) AS h(kind, amount)
     WHERE q.user_id = p_user_id AND q.period_start = p_period_start AND q.kind = h.kind;
$$;

-- Holds a user's amounts of each kind (text_tokens, images, cost_micro_usd: LOCK_ORDER)
-- within the limits (null: unlimited), each by a conditional upsert of its quota_usage
-- row whose condition (used + reserved + n <= limit) Postgres re-checks on the latest row
-- version after waiting for its lock. All or nothing: returns null when every kind is
-- held, else, after giving back what this call held, the refusal's detail
-- {kind, used, reserved, limit, requested}. Used by admit_job and reserve_job_hold.
CREATE FUNCTION hold_quota_kinds(p_user_id uuid, p_period_start date, p_limits bigint[], p_amounts bigint[])
RETURNS json LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_kinds text[] := ARRAY['text_tokens', 'images', 'cost_micro_usd'];
    v_held integer := 0;
    v_used bigint;
    v_reserved bigint;
BEGIN
    FOR i IN 1 .. 3 LOOP
        CONTINUE WHEN p_amounts[i] = 0;
        INSERT INTO quota_usage AS q (user_id, period_start, kind, reserved)
        SELECT p_user_id, p_period_start, v_kinds[i], p_amounts[i]
         WHERE p_limits[i] IS NULL OR p_amounts[i] <= p_limits[i]
        ON CONFLICT (user_id, period_start, kind) DO UPDATE
           SET reserved = q.reserved + EXCLUDED.reserved
         WHERE p_limits[i] IS NULL OR q.used + q.reserved + EXCLUDED.reserved <= p_limits[i];
        IF NOT FOUND THEN
            PERFORM admit_job_give_back(p_user_id, p_period_start, v_kinds[1:v_held], p_amounts[1:v_held]);
            SELECT q.used, q.reserved INTO v_used, v_reserved FROM quota_usage q
             WHERE q.user_id = p_user_id AND q.period_start = p_period_start AND q.kind = v_kinds[i];
            RETURN json_build_object('kind', v_kinds[i], 'used', coalesce(v_used, 0),
                                     'reserved', coalesce(v_reserved, 0), 'limit', p_limits[i],
                                     'requested', p_amounts[i]);
        END IF;
        v_held := i;
    END LOOP;
    RETURN NULL;
END;
$$;
