/**
 * The SQL that resolves quota holds (`quota_reservations` → `quota_usage`), shared by
 * the lifecycle's folded transitions and by @genq/quota's ledger, so a hold is
 * settled or released by one piece of SQL wherever it happens.
 *
 * Rows of `quota_usage` are locked in the kinds' fixed order (text_tokens, images,
 * cost_micro_usd), the order every statement that locks more than one of a user's
 * rows follows, so two of them never wait on each other in a cycle.
 */

/**
 * SQL expressions a hold resolution reads: parameters, or columns of the source's
 * row `s` (one mode and amounts per job, when a statement finishes many).
 */
export interface HoldResolution {
  /** A CTE with an `id` column, one row per job: the jobs whose holds are resolved. */
  source: string;
  /** `'settle'`, `'release'` or `'keep'` (leave the hold as it is: nothing resolved). */
  mode: string;
  /** The amounts actually used (charged at most what is held); 0 when releasing. */
  textTokens: string;
  images: string;
  costMicroUsd: string;
  /** The time written as `settled_at` / `released_at`. */
  at: string;
}

/**
 * WITH-clauses (each starting with a comma) that settle or release the holds of the
 * jobs in `source`: `held` (the reservations resolved, at most one per job) and
 * `charges` (per kind: actual and held). A settlement charges `LEAST(actual, held)`
 * and frees the hold; a release frees it. A data-modifying WITH runs to completion
 * whether or not the main query reads it.
 */
export function resolveHoldsSql(resolution: HoldResolution): string {
  const { source, mode, textTokens, images, costMicroUsd, at } = resolution;
  return `
    , held AS (
      UPDATE quota_reservations r
         SET status = CASE WHEN ${mode} = 'settle' THEN 'settled' ELSE 'released' END,
             settled_at = CASE WHEN ${mode} = 'settle' THEN ${at} END,
             released_at = CASE WHEN ${mode} = 'settle' THEN NULL ELSE ${at} END
        FROM ${source} s
       WHERE r.job_id = s.id AND r.status = 'reserved' AND ${mode} <> 'keep'
      RETURNING r.job_id, r.user_id, r.period_start, r.text_tokens, r.images, r.cost_micro_usd
    ), charges AS (
      SELECT h.job_id, h.user_id, h.period_start, v.position, v.kind, v.actual, v.held
        FROM held h JOIN ${source} s ON s.id = h.job_id CROSS JOIN LATERAL (VALUES
          (1, 'text_tokens', CASE WHEN ${mode} = 'settle' THEN ${textTokens} ELSE 0 END, h.text_tokens),
          (2, 'images', CASE WHEN ${mode} = 'settle' THEN ${images} ELSE 0 END, h.images::bigint),
          (3, 'cost_micro_usd', CASE WHEN ${mode} = 'settle' THEN ${costMicroUsd} ELSE 0 END, h.cost_micro_usd)
        ) AS v(position, kind, actual, held)
       WHERE v.actual > 0 OR v.held > 0
    ), charged AS (
      INSERT INTO quota_usage AS q (user_id, period_start, kind, used, reserved)
      SELECT user_id, period_start, kind, sum(LEAST(actual, held)), 0 FROM charges
       GROUP BY user_id, period_start, kind, position ORDER BY user_id, period_start, position
      ON CONFLICT (user_id, period_start, kind) DO UPDATE
         SET used = q.used + EXCLUDED.used,
             reserved = q.reserved - (SELECT sum(c.held) FROM charges c
                                       WHERE c.user_id = EXCLUDED.user_id AND c.period_start = EXCLUDED.period_start
                                         AND c.kind = EXCLUDED.kind)
    )`;
}

/** A select-list expression: the kinds a settlement charged above the hold, as JSON (null when none). */
export const SETTLEMENT_EXCESS_SQL = `(SELECT json_agg(json_build_object('jobId', c.job_id, 'userId', c.user_id,
  'kind', c.kind, 'actual', c.actual, 'held', c.held) ORDER BY c.job_id, c.position)
  FROM charges c WHERE c.actual > c.held)`;

/** Settles (or releases) one job's hold: `$1` job id, `$2` mode, `$3..$5` amounts, `$6` time. */
export const RESOLVE_ONE_HOLD_SQL = `
  WITH target AS (SELECT $1::uuid AS id)
  ${resolveHoldsSql({
    source: "target",
    mode: "$2::text",
    textTokens: "$3::bigint",
    images: "$4::bigint",
    costMicroUsd: "$5::bigint",
    at: "$6::timestamptz",
  })}
  SELECT (SELECT count(*) FROM held)::int AS resolved, ${SETTLEMENT_EXCESS_SQL} AS excess`;

/** What a job used beyond its hold, in one kind; charged at `held`. */
export interface HoldExcess {
  jobId: string;
  userId: string;
  kind: "text_tokens" | "images" | "cost_micro_usd";
  actual: number;
  held: number;
}

/** Releases the holds of several jobs: `$1` job ids (uuid[]), `$2` time. */
export const RELEASE_HOLDS_SQL = `
  WITH target AS (SELECT unnest($1::uuid[]) AS id)
  ${resolveHoldsSql({
    source: "target",
    mode: "'release'",
    textTokens: "0",
    images: "0",
    costMicroUsd: "0",
    at: "$2::timestamptz",
  })}
  SELECT (SELECT count(*) FROM held)::int AS resolved`;
