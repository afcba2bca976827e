import { resolveHoldsSql, SETTLEMENT_EXCESS_SQL } from "@genq/db";
import { statement } from "./sql-client.ts";

/**
 * The lifecycle's hot-path statements. Each is one round trip; the terminal ones
 * fold the job row, the usage record, the quota hold and the provider calls into
 * one statement of data-modifying WITH clauses, which Postgres runs atomically.
 *
 * The folded terminal statements only take jobs whose finishing has no effects
 * beyond those and their batch's counters (`FAST_FINISH`): without a webhook URL (of
 * the job or of its batch), whose owner has no enabled webhook endpoint (no outbox
 * rows). Other jobs are finished by the general path (one transaction running every
 * effect); a folded statement that matched no row tells the caller to take it.
 */

/** The condition that finishing job `j` has no effect but its own rows and its hold. */
const FAST_FINISH = `j.webhook_url IS NULL
  AND NOT EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.user_id = j.user_id AND e.disabled_at IS NULL)
  AND (j.batch_id IS NULL OR NOT EXISTS (SELECT 1 FROM batches b WHERE b.id = j.batch_id AND b.webhook_url IS NOT NULL))`;

/**
 * Counts the finished jobs of `source` that are batch items on their batches (rows
 * locked in id order) and ends a batch whose last item this was: `completed`, or
 * `canceled` when a cancel was requested. `batch_counted.just_finished` marks the
 * batches this statement ended (exactly once: it saw them running, under their lock).
 */
function countBatchItemsSql(source: string): string {
  return `
    , finished_items AS (
      SELECT batch_id, count(*) FILTER (WHERE status = 'completed')::int AS completed,
             count(*) FILTER (WHERE status = 'failed')::int AS failed,
             count(*) FILTER (WHERE status = 'canceled')::int AS canceled,
             count(*) FILTER (WHERE dispatched_at IS NULL)::int AS undispatched, count(*)::int AS n
        FROM ${source} WHERE batch_id IS NOT NULL GROUP BY batch_id
    ), batch_locked AS (
      SELECT b.id, b.status AS old_status FROM batches b
       WHERE b.id IN (SELECT batch_id FROM finished_items) ORDER BY b.id FOR UPDATE
    ), batch_counted AS (
      UPDATE batches b
         SET completed_count = b.completed_count + f.completed, failed_count = b.failed_count + f.failed,
             canceled_count = b.canceled_count + f.canceled, dispatched_count = b.dispatched_count + f.undispatched,
             status = CASE WHEN b.status = 'running'
                            AND b.completed_count + b.failed_count + b.canceled_count + f.n >= b.total
                           THEN (CASE WHEN b.cancel_requested THEN 'canceled' ELSE 'completed' END)::"BatchStatus"
                           ELSE b.status END,
             finished_at = CASE WHEN b.status = 'running'
                                 AND b.completed_count + b.failed_count + b.canceled_count + f.n >= b.total
                                THEN now() ELSE b.finished_at END,
             updated_at = now()
        FROM finished_items f JOIN batch_locked l ON l.id = f.batch_id
       WHERE b.id = f.batch_id
      RETURNING b.id, b.user_id AS batch_user_id, b.status::text AS batch_status, b.total, b.completed_count,
                b.failed_count, b.canceled_count, b.finished_at AS batch_finished_at,
                (l.old_status = 'running' AND b.status <> 'running') AS just_finished
    )`;
}

/** Select-list columns of the batch a finished job's statement ended (null when none). */
const BATCH_FINISHED_COLUMNS = `bc.just_finished, bc.batch_user_id, bc.batch_status, bc.total AS batch_total,
  bc.completed_count AS batch_completed, bc.failed_count AS batch_failed, bc.canceled_count AS batch_canceled,
  bc.batch_finished_at`;

/** The columns a finished job's effects read (FinishedJob). */
const FINISHED_COLUMNS = `j.id, j.user_id, j.type::text AS type, j.status::text AS status, j.batch_id, j.item_index,
  j.dispatched_at, j.webhook_url, j.error_code, j.error_message, j.finished_at`;

/** Inserts `$calls` (JSON array) as provider calls of attempt `attempt` of the jobs in `source`. */
function recordCallsSql(source: string, calls: string, attempt: string): string {
  return `
    , calls AS (
      INSERT INTO provider_calls (id, job_id, job_attempt, seq, provider, model, key_id, started_at, latency_ms,
                                  outcome, error_code, error_message, input_tokens, output_tokens)
      SELECT c.id, s.id, ${attempt}, c.seq, c.provider, c.model, c.key_id, c.started_at, c.latency_ms,
             c.outcome, c.error_code, c.error_message, c.input_tokens, c.output_tokens
        FROM ${source} s CROSS JOIN jsonb_to_recordset(${calls}) AS c(id uuid, seq int, provider text, model text,
             key_id text, started_at timestamptz, latency_ms int, outcome text, error_code text, error_message text,
             input_tokens int, output_tokens int)
      ON CONFLICT (job_id, job_attempt, seq) DO NOTHING
    )`;
}

/**
 * Claims a job for an attempt (queued/active → active) unless it is finished,
 * canceled or its owner disabled; `held`: it holds a quota reservation.
 * `$1` job id.
 */
export const CLAIM = statement(
  "claim",
  `WITH claimed AS (
     UPDATE jobs j SET status = 'active', attempts = j.attempts + 1, started_at = now(), updated_at = now()
      WHERE j.id = $1::uuid AND j.status IN ('queued', 'active') AND NOT j.cancel_requested
        AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = j.user_id AND u.disabled_at IS NOT NULL)
     RETURNING j.*
   )
   SELECT c.*, EXISTS (SELECT 1 FROM quota_reservations r WHERE r.job_id = c.id AND r.status = 'reserved') AS held
     FROM claimed c`,
);

/**
 * {@link CLAIM} for many jobs at once (group commit): `$1` the job ids. Rows are
 * locked in id order, so grouped claims of several processes never wait on each
 * other in a cycle.
 */
export const CLAIM_MANY = statement(
  "claim_many",
  `WITH locked AS (
     SELECT j.id FROM jobs j WHERE j.id = ANY ($1::uuid[]) ORDER BY j.id FOR UPDATE
   ), claimed AS (
     UPDATE jobs j SET status = 'active', attempts = j.attempts + 1, started_at = now(), updated_at = now()
      WHERE j.id IN (SELECT id FROM locked) AND j.status IN ('queued', 'active') AND NOT j.cancel_requested
        AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = j.user_id AND u.disabled_at IS NOT NULL)
     RETURNING j.*
   )
   SELECT c.*, EXISTS (SELECT 1 FROM quota_reservations r WHERE r.job_id = c.id AND r.status = 'reserved') AS held
     FROM claimed c`,
);

/** Why a claim found nothing to run: `$1` job id. */
export const CLAIM_MISS = statement(
  "claim_miss",
  `SELECT j.status::text AS status, u.disabled_at IS NOT NULL AS disabled
     FROM jobs j JOIN users u ON u.id = j.user_id WHERE j.id = $1::uuid`,
);

/**
 * The capped claim, as a script (one round trip, one transaction): the owner's
 * advisory lock first, then, in a later statement (a later snapshot, which sees
 * every claim of this owner committed before the lock was granted), the count of
 * the owner's running jobs and the claim if it is under the owner's plan's cap.
 */
export function claimCappedScript(jobId: string, lockClass: string, caps: Record<string, string>): string {
  return `
    SELECT pg_advisory_xact_lock(${lockClass}, hashtext(user_id::text)) FROM jobs WHERE id = ${jobId};
    WITH owner AS (
      SELECT u.id AS owner_id, u.plan::text AS owner_plan, u.disabled_at IS NOT NULL AS owner_disabled
        FROM jobs j JOIN users u ON u.id = j.user_id WHERE j.id = ${jobId}
    ), running AS (
      SELECT count(*)::int AS running_count FROM jobs
       WHERE user_id = (SELECT owner_id FROM owner) AND status = 'active' AND id <> ${jobId}
    ), cap AS (
      SELECT CASE (SELECT owner_plan FROM owner)
             WHEN 'basic' THEN ${caps.basic} WHEN 'professional' THEN ${caps.professional}
             ELSE ${caps.enterprise} END AS tenant_cap
    ), claimed AS (
      UPDATE jobs j SET status = 'active', attempts = j.attempts + 1, started_at = now(), updated_at = now()
       WHERE j.id = ${jobId} AND j.status IN ('queued', 'active') AND NOT j.cancel_requested
         AND NOT (SELECT owner_disabled FROM owner)
         AND (SELECT running_count FROM running) < (SELECT tenant_cap FROM cap)
      RETURNING j.*
    )
    SELECT o.owner_id, o.owner_disabled, r.running_count, k.tenant_cap, c.*,
           EXISTS (SELECT 1 FROM quota_reservations q WHERE q.job_id = c.id AND q.status = 'reserved') AS held
      FROM owner o CROSS JOIN running r CROSS JOIN cap k LEFT JOIN claimed c ON true;`;
}

/**
 * Completes an active job of the claimed attempt, when finishing it has no other
 * effects: the job row, its usage record, the settlement (or release) of its hold
 * and the attempt's provider calls, in one statement.
 * `$1` job id, `$2` attempt, `$3` result, `$4` provider, `$5` model, `$6` input
 * tokens, `$7` output tokens, `$8` cost, `$9` price version, `$10` usage id, `$11`
 * key id, `$12` cached input tokens, `$13` reasoning tokens, `$14` images, `$15`
 * calls, `$16` hold mode, `$17..$19` charged text tokens, images, cost.
 */
export const COMPLETE = statement(
  "complete",
  `WITH done AS (
     UPDATE jobs j SET status = 'completed', result = $3::jsonb, provider = $4, model = $5,
            input_tokens = $6::int, output_tokens = $7::int, cost_micro_usd = $8::bigint, price_version = $9,
            error_code = NULL, error_message = NULL, progress = 100, finished_at = now(), updated_at = now()
      WHERE j.id = $1::uuid AND j.status = 'active' AND NOT j.cancel_requested AND j.attempts = $2::int
        AND ${FAST_FINISH}
     RETURNING ${FINISHED_COLUMNS}
   ), usage AS (
     INSERT INTO usage_records (id, user_id, job_id, job_type, attempt, provider, model, key_id, input_tokens,
                                output_tokens, cached_input_tokens, reasoning_tokens, images, cost_micro_usd,
                                price_version)
     SELECT $10::uuid, d.user_id, d.id, d.type::"JobType", $2::int, $4, $5, $11, $6::int, $7::int, $12::int,
            $13::int, $14::int, $8::bigint, $9
       FROM done d
   )
   ${recordCallsSql("done", "$15::jsonb", "$2::int")}
   ${countBatchItemsSql("done")}
   ${resolveHoldsSql({
     source: "done",
     mode: "$16::text",
     textTokens: "$17::bigint",
     images: "$18::bigint",
     costMicroUsd: "$19::bigint",
     at: "now()",
   })}
   SELECT d.*, ${BATCH_FINISHED_COLUMNS}, ${SETTLEMENT_EXCESS_SQL} AS excess
     FROM done d LEFT JOIN batch_counted bc ON bc.id = d.batch_id`,
);

/**
 * The rows a finish may end: given an attempt (`$2`, a worker's report), the job in that
 * attempt while it is active, or queued by that delivery's own postponement (a run past the
 * postponement deadline is postponed, then failed); not a job queued again otherwise, e.g.
 * redriven after it failed in that attempt (a redrive clears `postponed_since`). Without an
 * attempt, any unfinished job.
 */
const FINISHABLE_IN_ATTEMPT = `(CASE WHEN $2::int IS NULL THEN j.status IN ('queued', 'active')
     ELSE j.attempts = $2::int
          AND (j.status = 'active' OR (j.status = 'queued' AND j.postponed_since IS NOT NULL)) END)`;

/**
 * Ends an unfinished job (failed, or canceled when its cancel was requested) that
 * has no other effects: the row, the attempt's calls and the release of its hold.
 * `$1` job id, `$2` attempt or null (any), `$3` status, `$4` error code, `$5`
 * message, `$6` calls, `$7` true: only if a cancel was requested.
 */
export const FINISH = statement(
  "finish",
  `WITH done AS (
     UPDATE jobs j SET status = $3::text::"JobStatus", error_code = COALESCE($4, j.error_code),
            error_message = COALESCE($5, j.error_message), finished_at = now(), updated_at = now()
      WHERE j.id = $1::uuid AND ${FINISHABLE_IN_ATTEMPT}
        AND (NOT $7::boolean OR j.cancel_requested) AND ${FAST_FINISH}
     RETURNING ${FINISHED_COLUMNS}, j.attempts
   ), releasing AS (SELECT id FROM done WHERE dispatched_at IS NOT NULL)
   ${recordCallsSql("done", "$6::jsonb", "COALESCE($2::int, s.attempts)")}
   ${countBatchItemsSql("done")}
   ${resolveHoldsSql({
     source: "releasing",
     mode: "'release'",
     textTokens: "0",
     images: "0",
     costMicroUsd: "0",
     at: "now()",
   })}
   SELECT d.*, ${BATCH_FINISHED_COLUMNS} FROM done d LEFT JOIN batch_counted bc ON bc.id = d.batch_id`,
);

/**
 * Puts an active job of the claimed attempt back to `queued`: a failed attempt to
 * retry (`$3` error code, `$4` message) or a postponement (`$5` true, `$6` since),
 * with the attempt's calls (`$7`). `$1` job id, `$2` attempt (null: any).
 */
export const REQUEUE = statement(
  "requeue",
  `WITH requeued AS (
     UPDATE jobs j SET status = 'queued', queued_at = now(), updated_at = now(),
            error_code = CASE WHEN $5::boolean THEN j.error_code ELSE $3 END,
            error_message = CASE WHEN $5::boolean THEN j.error_message ELSE $4 END,
            postponements = j.postponements + CASE WHEN $5::boolean THEN 1 ELSE 0 END,
            postponed_since = CASE WHEN $5::boolean THEN $6::timestamptz ELSE j.postponed_since END
      WHERE j.id = $1::uuid AND j.status = 'active' AND NOT j.cancel_requested
        AND ($2::int IS NULL OR j.attempts = $2::int)
     RETURNING j.id, j.attempts
   )
   ${recordCallsSql("requeued", "$7::jsonb", "s.attempts")}
   SELECT id FROM requeued`,
);

/**
 * {@link COMPLETE} for many jobs at once (group commit): `$1` a JSON array of
 * completions. Job rows are locked in id order and `quota_usage` rows in
 * (user, month, kind) order, so two grouped statements never wait on each other in
 * a cycle. Returns the jobs it completed; the others take the general path.
 */
export const COMPLETE_MANY = statement(
  "complete_many",
  `WITH input AS (
     SELECT * FROM jsonb_to_recordset($1::jsonb) AS i(job_id uuid, attempt int, result jsonb, provider text,
            model text, input_tokens int, output_tokens int, cost bigint, price_version text, usage_id uuid,
            key_id text, cached_input_tokens int, reasoning_tokens int, images int, calls jsonb, mode text,
            charge_text bigint, charge_images bigint, charge_cost bigint)
   ), locked AS (
     SELECT j.id FROM jobs j WHERE j.id IN (SELECT job_id FROM input) ORDER BY j.id FOR UPDATE
   ), done AS (
     UPDATE jobs j SET status = 'completed', result = i.result, provider = i.provider, model = i.model,
            input_tokens = i.input_tokens, output_tokens = i.output_tokens, cost_micro_usd = i.cost,
            price_version = i.price_version, error_code = NULL, error_message = NULL, progress = 100,
            finished_at = now(), updated_at = now()
       FROM input i
      WHERE j.id = i.job_id AND j.id IN (SELECT id FROM locked)
        AND j.status = 'active' AND NOT j.cancel_requested AND j.attempts = i.attempt AND ${FAST_FINISH}
     RETURNING ${FINISHED_COLUMNS}, i.attempt, i.provider AS usage_provider, i.model AS usage_model,
               i.input_tokens AS usage_input_tokens, i.output_tokens AS usage_output_tokens, i.cost,
               i.price_version AS usage_price_version, i.usage_id, i.key_id, i.cached_input_tokens,
               i.reasoning_tokens, i.images, i.calls, i.mode, i.charge_text, i.charge_images, i.charge_cost
   ), usage AS (
     INSERT INTO usage_records (id, user_id, job_id, job_type, attempt, provider, model, key_id, input_tokens,
                                output_tokens, cached_input_tokens, reasoning_tokens, images, cost_micro_usd,
                                price_version)
     SELECT d.usage_id, d.user_id, d.id, d.type::"JobType", d.attempt, d.usage_provider, d.usage_model, d.key_id,
            d.usage_input_tokens, d.usage_output_tokens, d.cached_input_tokens, d.reasoning_tokens, d.images,
            d.cost, d.usage_price_version
       FROM done d
   ), calls AS (
     INSERT INTO provider_calls (id, job_id, job_attempt, seq, provider, model, key_id, started_at, latency_ms,
                                 outcome, error_code, error_message, input_tokens, output_tokens)
     SELECT c.id, d.id, d.attempt, c.seq, c.provider, c.model, c.key_id, c.started_at, c.latency_ms,
            c.outcome, c.error_code, c.error_message, c.input_tokens, c.output_tokens
       FROM done d CROSS JOIN jsonb_to_recordset(d.calls) AS c(id uuid, seq int, provider text, model text,
            key_id text, started_at timestamptz, latency_ms int, outcome text, error_code text, error_message text,
            input_tokens int, output_tokens int)
     ON CONFLICT (job_id, job_attempt, seq) DO NOTHING
   )
   ${countBatchItemsSql("done")}
   ${resolveHoldsSql({
     source: "done",
     mode: "s.mode",
     textTokens: "s.charge_text",
     images: "s.charge_images",
     costMicroUsd: "s.charge_cost",
     at: "now()",
   })}
   SELECT d.id, d.user_id, d.type, d.status, d.batch_id, d.item_index, d.dispatched_at, d.webhook_url,
          d.error_code, d.error_message, d.finished_at, ${BATCH_FINISHED_COLUMNS}, ${SETTLEMENT_EXCESS_SQL} AS excess
     FROM done d LEFT JOIN batch_counted bc ON bc.id = d.batch_id`,
);

/**
 * Redrives one failed job (`redrive_job`, migration `20261203150000_redrive`): back to
 * `queued` with a quota hold taken as at admission, its batch counting it as pending
 * again. `$1` job id, `$2` owner (null: any), `$3` output cap (null: keep), `$4`–`$9`
 * the hold as `admit_job` takes it (`$4` null: hold nothing).
 */
export const REDRIVE = statement(
  "redrive",
  "SELECT outcome, detail FROM redrive_job($1::uuid, $2::uuid, $3::int, $4::date, $5::jsonb, " +
    "$6::bigint, $7::int, $8::bigint, $9::text[])",
);
