import { createPrismaClient, JobSearch, type JobSearchQuery, jobSearchWhere, Prisma } from "@genq/db";
import { createTestDatabase } from "@genq/db/testing";
import { percentile, round } from "./stats.ts";

/** One search shape's latency over random arguments, in milliseconds. */
export interface SearchFigure {
  name: string;
  p50: number;
  p95: number;
  /** Postgres' own execution time of the search statement (EXPLAIN ANALYZE), free of client scheduling. */
  serverP50: number;
  serverP95: number;
  /** Rows the searches returned on average (a page is at most 20). */
  rows: number;
}

/** The Q1 figures of one run. */
export interface JobSearchResult {
  name: "job-search";
  jobs: number;
  users: number;
  loadSeconds: number;
  runsPerShape: number;
  /** `SELECT 1` through the same client: the floor of any query. */
  baseline: { p50: number; p95: number };
  searches: SearchFigure[];
  goal: { p95Ms: 50 };
}

const USERS = 1_000;
/** Each user's jobs name 20 customers of their own (20,000 in all, ~50 jobs each at 1M). */
const CUSTOMERS_PER_USER = 20;
const DAY_MS = 86_400_000;

/**
 * Q1: job search at a million jobs (issue 16). Loads `jobs` rows with generate_series
 * into a migrated temporary schema (1,000 users, 30 days, metadata with 20,000
 * customers, 5 % failed with one of four error codes), ANALYZEs, then times each
 * search shape through `JobSearch.page` (the code the routes run, one page of 20) with
 * random users, customers and ranges: p50 and p95 per shape.
 */
export async function benchJobSearch(options: {
  databaseUrl: string;
  jobs: number;
  runs: number;
}): Promise<JobSearchResult> {
  const database = await createTestDatabase({ baseUrl: options.databaseUrl });
  const db = createPrismaClient({ connectionString: database.url, maxConnections: 2 });
  try {
    const loadStarted = performance.now();
    await db.$executeRawUnsafe(
      `INSERT INTO users (id, email, updated_at)
       SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(u), 12, '0'))::uuid, 'bench-' || u || '@example.com', now()
         FROM generate_series(1, ${USERS}) AS u`,
    );
    const now = Date.now();
    // UUIDv7-like ids (time-ordered), as the API's: id order is creation order.
    await db.$executeRawUnsafe(
      `INSERT INTO jobs (id, user_id, type, status, priority, provider, model, input, metadata, error_code,
                         attempts, created_at, queued_at, finished_at, updated_at)
       SELECT (lpad(to_hex(ms), 12, '0') || '7' || substr(h, 1, 3) || '8' || substr(h, 4, 15))::uuid,
              ('00000000-0000-7000-8000-' || lpad(to_hex(1 + i % ${USERS}), 12, '0'))::uuid,
              'text', CASE WHEN i % 20 = 0 THEN 'failed' ELSE 'completed' END::"JobStatus",
              CASE WHEN i % 10 = 0 THEN 2 ELSE 5 END,
              CASE WHEN i % 3 = 0 THEN 'anthropic' ELSE 'openai' END,
              CASE WHEN i % 3 = 0 THEN 'claude-haiku' ELSE 'gpt-4o-mini' END,
              '{"prompt": "bench"}'::jsonb,
              jsonb_build_object('customer', 'c' || ((i % ${USERS}) * ${CUSTOMERS_PER_USER} + (i / ${USERS}) % ${CUSTOMERS_PER_USER}), 'env', CASE WHEN i % 2 = 0 THEN 'prod' ELSE 'test' END),
              CASE WHEN i % 20 = 0 THEN (ARRAY['provider_unavailable', 'timeout', 'invalid_request', 'rate_limited'])[1 + (i / 20) % 4] END,
              1, to_timestamp(ms / 1000.0), to_timestamp(ms / 1000.0), to_timestamp(ms / 1000.0), now()
         FROM (SELECT i, ${now - 30 * DAY_MS}::bigint + (i::bigint * ${30 * DAY_MS} / ${options.jobs}) AS ms,
                      md5(i::text) AS h
                 FROM generate_series(1, ${options.jobs}) AS i) s`,
    );
    await db.$executeRawUnsafe("ANALYZE jobs");
    const loadSeconds = round((performance.now() - loadStarted) / 1_000, 1);

    const search = new JobSearch({ db });
    const random = (n: number) => Math.floor(Math.random() * n);
    const userId = (index: number) => `00000000-0000-7000-8000-${(1 + index).toString(16).padStart(12, "0")}`;
    const user = () => userId(random(USERS));
    const customer = () => `c${random(USERS * CUSTOMERS_PER_USER)}`;
    /** A user and one of the customers their jobs name. */
    const userAndCustomer = () => {
      const index = random(USERS);
      return {
        userId: userId(index),
        customer: `c${index * CUSTOMERS_PER_USER + random(CUSTOMERS_PER_USER)}`,
      };
    };
    const since = (days: number) => new Date(now - days * DAY_MS);
    const shapes: Array<{ name: string; query: () => JobSearchQuery }> = [
      { name: "user: newest page", query: () => ({ userId: user(), limit: 20 }) },
      {
        name: "user: metadata customer",
        query: () => {
          const pick = userAndCustomer();
          return { userId: pick.userId, metadata: { customer: pick.customer }, limit: 20 };
        },
      },
      { name: "user: status failed", query: () => ({ userId: user(), status: "failed", limit: 20 }) },
      {
        name: "user: last 7 days, priority high",
        query: () => ({ userId: user(), createdFrom: since(7), priority: 2, limit: 20 }),
      },
      {
        name: "user: metadata + status + model",
        query: () => {
          const pick = userAndCustomer();
          return {
            userId: pick.userId,
            metadata: { customer: pick.customer, env: "prod" },
            status: "completed",
            model: "gpt-4o-mini",
            limit: 20,
          };
        },
      },
      {
        name: "admin: metadata customer (all users)",
        query: () => ({ metadata: { customer: customer() }, limit: 20 }),
      },
      { name: "admin: dead letters (status failed)", query: () => ({ status: "failed", limit: 20 }) },
      {
        name: "admin: failed by error code, last 3 days",
        query: () => ({ status: "failed", errorCode: "timeout", createdFrom: since(3), limit: 20 }),
      },
      {
        name: "admin: failed on a provider",
        query: () => ({ status: "failed", provider: "anthropic", limit: 20 }),
      },
    ];

    // Warm up: plans cached, index pages read once.
    for (const shape of shapes) for (let run = 0; run < 20; run++) await search.page(shape.query());
    const serverTime = async (query: JobSearchQuery): Promise<number> => {
      const [row] = await db.$queryRaw<Array<{ "QUERY PLAN": Array<{ "Execution Time": number }> }>>(
        Prisma.sql`EXPLAIN (ANALYZE, FORMAT JSON) SELECT j.id FROM jobs j WHERE ${jobSearchWhere(query)} ORDER BY j.id DESC LIMIT ${query.limit + 1}`,
      );
      return row?.["QUERY PLAN"][0]?.["Execution Time"] ?? Number.NaN;
    };
    const serverTimes = new Map<string, number[]>(shapes.map((shape) => [shape.name, []]));
    const baselineTimes: number[] = [];
    const times = new Map<string, number[]>(shapes.map((shape) => [shape.name, []]));
    const rows = new Map<string, number>(shapes.map((shape) => [shape.name, 0]));
    for (let run = 0; run < options.runs; run++) {
      const started = performance.now();
      await db.$queryRaw`SELECT 1`;
      baselineTimes.push(performance.now() - started);
      for (const shape of shapes) {
        const query = shape.query();
        const begun = performance.now();
        const page = await search.page(query);
        times.get(shape.name)?.push(performance.now() - begun);
        rows.set(shape.name, (rows.get(shape.name) ?? 0) + page.jobs.length);
        serverTimes.get(shape.name)?.push(await serverTime(shape.query()));
      }
    }
    return {
      name: "job-search",
      jobs: options.jobs,
      users: USERS,
      loadSeconds,
      runsPerShape: options.runs,
      baseline: { p50: round(percentile(baselineTimes, 50)), p95: round(percentile(baselineTimes, 95)) },
      searches: shapes.map((shape) => ({
        name: shape.name,
        p50: round(percentile(times.get(shape.name) ?? [], 50)),
        p95: round(percentile(times.get(shape.name) ?? [], 95)),
        serverP50: round(percentile(serverTimes.get(shape.name) ?? [], 50)),
        serverP95: round(percentile(serverTimes.get(shape.name) ?? [], 95)),
        rows: round((rows.get(shape.name) ?? 0) / options.runs, 1),
      })),
      goal: { p95Ms: 50 },
    };
  } finally {
    await db.$disconnect();
    await database.drop();
  }
}
