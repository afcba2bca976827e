import { randomBytes } from "node:crypto";
import {
  AccountRepository,
  BatchItemSpool,
  BatchRepository,
  createPrismaClient,
  type Database,
  EconomyRepository,
  JobRepository,
} from "@genq/db";
import { createTestDatabase, type TestDatabase } from "@genq/db/testing";
import { JobLifecycle } from "@genq/lifecycle";
import { GenqMetrics } from "@genq/metrics";
import {
  buildRouterConfig,
  defaultProvidersFile,
  ProviderRouter,
  RedisRouterState,
  type RouterConfig,
} from "@genq/providers";
import {
  type FakeAnthropicServer,
  type FakeGeminiServer,
  type FakeOpenAIServer,
  openAIErrorBodies,
  startFakeAnthropicServer,
  startFakeGeminiServer,
  startFakeOpenAIServer,
} from "@genq/providers/testing";
import { createRedisConnection, JobQueues } from "@genq/queue";
import { QuotaLedger, resolvePlans } from "@genq/quota";
import { Worker } from "bullmq";
import type { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { MAX_FAILED_LOOKUPS } from "./economy-collector.ts";
import type { EconomyFallback } from "./economy-options.ts";
import { EconomyScheduler } from "./economy-scheduler.ts";
import { JobProcessor } from "./job-processor.ts";

const API_KEY = "sk-economy-test";
const logger = pino({ level: process.env.TEST_LOG ?? "silent" });

let database: TestDatabase;
let db: Database;
let redis: Redis;
let server: FakeOpenAIServer;
let config: RouterConfig;
let router: ProviderRouter;
let lifecycle: JobLifecycle;
let batches: BatchRepository;
let economy: EconomyRepository;
let accounts: AccountRepository;
let ledger: QuotaLedger;
let queues: JobQueues;

beforeAll(async () => {
  database = await createTestDatabase();
  db = createPrismaClient({ connectionString: database.url, maxConnections: 8 });
  redis = createRedisConnection({ url: process.env.REDIS_URL ?? "redis://127.0.0.1:6379", role: "producer" });
  redis.on("error", () => {});
  server = await startFakeOpenAIServer({ apiKey: API_KEY });
  config = buildRouterConfig(
    defaultProvidersFile({ defaultProvider: "openai", openai: { apiKey: API_KEY, baseUrl: server.url } }),
    { source: "test" },
  );
  router = new ProviderRouter({
    config: () => config,
    state: new RedisRouterState({
      redis,
      prefix: `t${randomBytes(5).toString("hex")}`,
      breaker: () => config.breaker,
    }),
  });
  lifecycle = new JobLifecycle({ db });
  batches = new BatchRepository({ db, hooks: lifecycle.effects });
  economy = new EconomyRepository({ db });
  accounts = new AccountRepository({ db });
  ledger = new QuotaLedger({ db, plans: resolvePlans(undefined) });
});

beforeEach(async () => {
  queues = new JobQueues({ connection: redis, prefix: `t${randomBytes(5).toString("hex")}` });
  server.reset();
  server.batches.setOutcome({ status: "completed" });
  server.batches.setRequestOutcome(undefined);
  server.batches.setPollsUntilEnd(1);
  // Each test starts without running batches of earlier tests.
  await db.batch.updateMany({ where: { status: "running" }, data: { status: "canceled" } });
});

afterEach(async () => {
  const prefix = queues.prefix;
  await queues.close();
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1_000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== "0");
});

afterAll(async () => {
  await server?.close();
  redis?.disconnect();
  await db?.$disconnect();
  await database?.drop();
});

function scheduler(
  fallback: EconomyFallback = "online",
  routedBy: ProviderRouter = router,
  leaseMs?: number,
  metrics?: GenqMetrics,
): EconomyScheduler {
  return new EconomyScheduler({
    ...(leaseMs === undefined ? {} : { leaseMs }),
    ...(metrics === undefined ? {} : { metrics }),
    economy,
    batches,
    lifecycle,
    router: routedBy,
    queues,
    logger,
    quota: ledger,
    fallback,
    firstPollMs: 0,
    pollBaseMs: 1,
    pollMaxMs: 1,
  });
}

async function createUser(): Promise<string> {
  const { user } = await accounts.createUser({
    email: `${randomBytes(6).toString("hex")}@example.com`,
    plan: "enterprise",
  });
  return user.id;
}

async function economyBatch(userId: string, items: number): Promise<string> {
  async function* checked() {
    for (let index = 0; index < items; index++)
      yield { index, valid: true as const, input: { prompt: `question ${index}`, maxTokens: 16 } };
  }
  const spool = await BatchItemSpool.fromItems(checked());
  try {
    const { batch } = await batches.create({ userId, type: "text", priority: 7, tier: "economy" }, spool);
    return batch.id;
  } finally {
    await spool.close();
  }
}

/** Runs scheduler passes until the batch's provider batches have all ended (bounded). */
async function runUntilCollected(run: EconomyScheduler, batchId: string): Promise<void> {
  for (let pass = 0; pass < 20; pass++) {
    await run.runOnce();
    const open = await db.providerBatch.count({ where: { batchId, status: { not: "ended" } } });
    const submitted = await db.providerBatch.count({ where: { batchId } });
    if (submitted > 0 && open === 0) return;
  }
  throw new Error("the provider batches never ended");
}

/**
 * A worker dies between a provider's acceptance of a batch and recording its id: the row
 * as it then was, its submit lease lapsed. The next pass must find the provider's batch
 * by its tag and collect it, with nothing falling back online and no second batch.
 */
async function expectCutOffSubmissionFound(
  routedBy: ProviderRouter,
  provider: string,
  providerBatches: () => number,
): Promise<void> {
  const userId = await createUser();
  const batchId = await economyBatch(userId, 3);
  await scheduler("online", routedBy).runOnce();
  const [submitted] = await db.providerBatch.findMany({ where: { batchId } });
  expect(submitted?.externalId).toBeTruthy();
  const sent = providerBatches();
  await db.$executeRaw`
    UPDATE provider_batches SET status = 'submitting', external_id = NULL, lease_until = now() - interval '1 second'
     WHERE batch_id = ${batchId}::uuid`;
  const metrics = new GenqMetrics({ process: "worker", defaultMetrics: false });
  await runUntilCollected(scheduler("online", routedBy, undefined, metrics), batchId);
  const [row] = await db.providerBatch.findMany({ where: { batchId } });
  expect(row).toMatchObject({ externalId: submitted?.externalId, status: "ended", outcome: "completed" });
  expect(await db.batch.findUniqueOrThrow({ where: { id: batchId } })).toMatchObject({
    status: "completed",
    completedCount: 3,
  });
  expect(await queues.queue("text").count()).toBe(0);
  expect(providerBatches()).toBe(sent);
  expect(await counterValues(metrics, "genq_provider_batches_total")).toMatchObject({
    [`${provider}/recovered`]: 1,
  });
}

/** A counter's values by its labels' values joined with "/" (provider/outcome, provider/model). */
async function counterValues(metrics: GenqMetrics, name: string): Promise<Record<string, number>> {
  const metric = await metrics.registry.getSingleMetric(name)?.get();
  return Object.fromEntries(
    (metric?.values ?? []).map((value) => [Object.values(value.labels).join("/"), value.value]),
  );
}

/** The fake's provider batch of a genq batch (named in its metadata). */
function providerBatchOf(batchId: string) {
  return [...server.batches.batches.values()].find(
    (batch) => (batch.metadata as { genq_batch?: string } | undefined)?.genq_batch === batchId,
  );
}

function batchCost(usage: { inputTokens: number; outputTokens: number }, tier: "batch" | "online") {
  return config.prices.costMicroUsd({ provider: "openai", model: "gpt-4o-mini", usage, tier }).costMicroUsd;
}

describe("EconomyScheduler", () => {
  it("runs an economy batch of 1,000 items through the provider's batch API at batch prices", async () => {
    const userId = await createUser();
    const batchId = await economyBatch(userId, 1_000);
    await runUntilCollected(scheduler(), batchId);

    // One provider batch of 1,000 requests, sent through the Files and Batches API.
    expect(providerBatchOf(batchId)?.requests).toHaveLength(1_000);
    expect(await db.providerBatch.count({ where: { batchId } })).toBe(1);
    expect(server.requests.filter((request) => request.path === "/v1/chat/completions")).toHaveLength(0);

    const batch = await db.batch.findUniqueOrThrow({ where: { id: batchId } });
    expect(batch).toMatchObject({ status: "completed", completedCount: 1_000, failedCount: 0 });
    const jobs = await db.job.findMany({ where: { batchId }, orderBy: { itemIndex: "asc" } });
    expect(jobs.every((job) => job.status === "completed")).toBe(true);
    const first = jobs[0];
    expect(first?.result).toMatchObject({ provider: "openai", model: "gpt-4o-mini", tier: "economy" });
    expect((first?.result as { text?: string } | null)?.text).toContain("question 0");

    const usage = await db.usageRecord.findMany({ where: { userId } });
    expect(usage).toHaveLength(1_000);
    let tokens = 0;
    let cost = 0;
    for (const record of usage) {
      const counts = { inputTokens: record.inputTokens, outputTokens: record.outputTokens };
      expect(record.inputTokens).toBeGreaterThan(0);
      expect(Number(record.costMicroUsd)).toBe(batchCost(counts, "batch"));
      expect(Number(record.onlineCostMicroUsd)).toBe(batchCost(counts, "online"));
      tokens += record.inputTokens + record.outputTokens;
      cost += Number(record.costMicroUsd);
    }
    expect(cost).toBeGreaterThan(0);
    expect(cost).toBeLessThan(usage.reduce((sum, record) => sum + Number(record.onlineCostMicroUsd), 0));

    // The quota is settled from the reported usage; nothing stays reserved.
    const status = await ledger.status(userId);
    expect(status.kinds.textTokens).toMatchObject({ used: tokens, reserved: 0 });
    expect(status.kinds.costMicroUsd).toMatchObject({ used: cost, reserved: 0 });
    expect(await db.quotaReservation.count({ where: { userId, status: "reserved" } })).toBe(0);
  }, 120_000);

  it("fails the items the provider failed, in genq's taxonomy, and completes the others", async () => {
    server.batches.setRequestOutcome((_customId, body) =>
      JSON.stringify(body).includes("question 3")
        ? { status: 400, body: openAIErrorBodies.contextLengthExceeded }
        : undefined,
    );
    const userId = await createUser();
    const batchId = await economyBatch(userId, 5);
    const metrics = new GenqMetrics({ process: "worker", defaultMetrics: false });
    await runUntilCollected(scheduler("online", router, undefined, metrics), batchId);
    // /metrics: one provider batch submitted and completed, its items by outcome, and the
    // tokens and cost of those the provider ran, as online calls count theirs.
    expect(await counterValues(metrics, "genq_provider_batches_total")).toEqual({
      "openai/submitted": 1,
      "openai/completed": 1,
    });
    expect(await counterValues(metrics, "genq_provider_batch_items_total")).toEqual({
      "openai/succeeded": 4,
      "openai/errored": 1,
    });
    const itemCosts = await db.job.findMany({
      where: { batchId, status: "completed" },
      select: { costMicroUsd: true },
    });
    expect(await counterValues(metrics, "genq_provider_cost_micro_usd_total")).toEqual({
      "openai/gpt-4o-mini": itemCosts.reduce((sum, job) => sum + Number(job.costMicroUsd), 0),
    });
    const failed = await db.job.findFirstOrThrow({ where: { batchId, itemIndex: 3 } });
    expect(failed).toMatchObject({ status: "failed", errorCode: "context_length_exceeded" });
    expect(await db.batch.findUniqueOrThrow({ where: { id: batchId } })).toMatchObject({
      status: "completed",
      completedCount: 4,
      failedCount: 1,
    });
    expect(await db.quotaReservation.count({ where: { userId, status: "reserved" } })).toBe(0);
  });

  it("runs the items of an expired provider batch online when the operator allows it", async () => {
    server.batches.setOutcome({ status: "expired", ran: 3 });
    const userId = await createUser();
    const batchId = await economyBatch(userId, 10);
    await runUntilCollected(scheduler("online"), batchId);
    expect(await db.job.count({ where: { batchId, status: "completed" } })).toBe(3);

    // The other seven wait in the online queue: a worker runs them at online prices.
    const processor = new JobProcessor({
      lifecycle,
      router,
      logger,
      quota: ledger,
      attemptTimeoutMs: 10_000,
    });
    const queue = queues.queue("text");
    expect(await queue.count()).toBe(7);
    const connection = createRedisConnection({
      url: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
      role: "worker",
    });
    const worker = new Worker(queue.name, processor.process, { connection, prefix: queues.prefix });
    try {
      await expect
        .poll(() => db.batch.findUniqueOrThrow({ where: { id: batchId } }), { timeout: 20_000 })
        .toMatchObject({ status: "completed", completedCount: 10 });
    } finally {
      await worker.close();
      connection.disconnect();
    }
    const jobs = await db.job.findMany({ where: { batchId }, orderBy: { itemIndex: "asc" } });
    const tiers = jobs.map((job) => (job.result as { tier?: string }).tier ?? "online");
    expect(tiers).toEqual([...Array(3).fill("economy"), ...Array(7).fill("online")]);
    expect(server.requests.filter((request) => request.path === "/v1/chat/completions")).toHaveLength(7);
    const usage = await db.usageRecord.findMany({ where: { userId } });
    for (const record of usage) {
      const counts = { inputTokens: record.inputTokens, outputTokens: record.outputTokens };
      const economyItem = record.onlineCostMicroUsd !== null;
      expect(Number(record.costMicroUsd)).toBe(batchCost(counts, economyItem ? "batch" : "online"));
    }
    expect(await db.quotaReservation.count({ where: { userId, status: "reserved" } })).toBe(0);
  }, 30_000);

  it("fails the items of an expired provider batch when the operator says so", async () => {
    server.batches.setOutcome({ status: "expired", ran: 2 });
    const userId = await createUser();
    const batchId = await economyBatch(userId, 5);
    await runUntilCollected(scheduler("fail"), batchId);
    const jobs = await db.job.findMany({ where: { batchId }, orderBy: { itemIndex: "asc" } });
    expect(jobs.map((job) => job.status)).toEqual(["completed", "completed", "failed", "failed", "failed"]);
    expect(jobs[4]?.errorCode).toBe("timeout");
    expect(await queues.queue("text").count()).toBe(0);
    expect(await db.batch.findUniqueOrThrow({ where: { id: batchId } })).toMatchObject({
      status: "completed",
      completedCount: 2,
      failedCount: 3,
    });
    expect(await db.quotaReservation.count({ where: { userId, status: "reserved" } })).toBe(0);
  });

  it("falls back when the provider refuses the batch", async () => {
    server.batches.setOutcome({ status: "failed", message: "the input file is invalid" });
    const userId = await createUser();
    const batchId = await economyBatch(userId, 4);
    await runUntilCollected(scheduler("fail"), batchId);
    const jobs = await db.job.findMany({ where: { batchId } });
    expect(jobs.map((job) => job.errorCode)).toEqual(Array(4).fill("provider_unavailable"));
    expect(jobs[0]?.errorMessage).toContain("the input file is invalid");
  });

  it("cancels the provider batch when its genq batch is canceled", async () => {
    server.batches.setPollsUntilEnd(100);
    const userId = await createUser();
    const batchId = await economyBatch(userId, 6);
    const run = scheduler();
    await run.runOnce();
    const providerBatch = providerBatchOf(batchId);
    expect(providerBatch?.status).toBe("in_progress");
    await batches.requestCancel(userId, batchId);
    await runUntilCollected(run, batchId);
    expect(providerBatch?.status).toBe("cancelled");
    expect(server.requests.some((request) => request.path.endsWith("/cancel"))).toBe(true);
    const batch = await db.batch.findUniqueOrThrow({ where: { id: batchId } });
    expect(batch).toMatchObject({ status: "canceled", canceledCount: 6 });
    expect(await db.quotaReservation.count({ where: { userId, status: "reserved" } })).toBe(0);
    expect(await queues.queue("text").count()).toBe(0);
  });

  it("finds the provider's batch of a submission cut off before its id was recorded, instead of running it twice", async () => {
    server.batches.setPollsUntilEnd(2);
    await expectCutOffSubmissionFound(router, "openai", () => server.batches.batches.size);
  });

  it("falls back the items of a cut-off submission when the provider's batch list keeps failing, instead of waiting for ever", async () => {
    const userId = await createUser();
    const batchId = await economyBatch(userId, 3);
    await scheduler().runOnce();
    await db.$executeRaw`
      UPDATE provider_batches SET status = 'submitting', external_id = NULL, polls = 0, lease_until = now() - interval '1 second'
       WHERE batch_id = ${batchId}::uuid`;
    // The key may submit but not list (or the list endpoint is down).
    server.setHandler((request) =>
      request.method === "GET" && request.path === "/v1/batches"
        ? { status: 500, body: openAIErrorBodies.serverError }
        : undefined,
    );
    await runUntilCollected(scheduler(), batchId);
    const lookups = server.requests.filter(
      (request) => request.method === "GET" && request.path === "/v1/batches",
    );
    expect(lookups).toHaveLength(MAX_FAILED_LOOKUPS);
    const [row] = await db.providerBatch.findMany({ where: { batchId } });
    expect(row).toMatchObject({ status: "ended", outcome: "failed" });
    // Its three items run online.
    expect(await queues.queue("text").count()).toBe(3);
  });

  it("cancels a provider batch accepted after its submission was given up (its items fell back), instead of running them twice", async () => {
    const userId = await createUser();
    const batchId = await economyBatch(userId, 3);
    // The provider holds its answer to the batch's creation until the test lets it go.
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let creating = false;
    server.setHandler(async (request) => {
      if (request.method === "POST" && request.path === "/v1/batches") {
        creating = true;
        await held;
      }
      return undefined;
    });
    const slowMetrics = new GenqMetrics({ process: "worker", defaultMetrics: false });
    const slow = scheduler("online", router, undefined, slowMetrics).runOnce();
    while (!creating) await new Promise((resolve) => setTimeout(resolve, 10));
    // Meanwhile its lease lapses and another scheduler gives the submission up: not at the
    // provider yet, so its items fall back online.
    await db.$executeRaw`
      UPDATE provider_batches SET lease_until = now() - interval '1 second' WHERE batch_id = ${batchId}::uuid`;
    const metrics = new GenqMetrics({ process: "worker", defaultMetrics: false });
    await scheduler("online", router, undefined, metrics).runOnce();
    expect(await queues.queue("text").count()).toBe(3);
    release();
    await slow;
    const [row] = await db.providerBatch.findMany({ where: { batchId } });
    expect(row).toMatchObject({ status: "ended", outcome: "failed", externalId: null });
    expect(providerBatchOf(batchId)?.status).toBe("cancelling");
    expect(server.requests.some((request) => request.path.endsWith("/cancel"))).toBe(true);
    expect(await counterValues(metrics, "genq_provider_batches_total")).toMatchObject({
      "openai/interrupted": 1,
    });
    expect(await counterValues(slowMetrics, "genq_provider_batches_total")).toMatchObject({
      "openai/abandoned": 1,
    });
  });

  it("keeps the reconciler away from items at a provider, and gives it back those taken back", async () => {
    server.batches.setPollsUntilEnd(1_000_000);
    const userId = await createUser();
    const batchId = await economyBatch(userId, 3);
    await scheduler().runOnce();
    const jobs = new JobRepository({ db });
    const later = new Date(Date.now() + 60_000);
    const unfinished = async () =>
      (await jobs.findUnfinished({ queuedBefore: later, activeBefore: later, limit: 10_000 })).filter(
        (job) => job.status === "active",
      );
    const items = await db.job.findMany({ where: { batchId } });
    expect(items.every((item) => item.status === "active")).toBe(true);
    const ids = new Set(items.map((item) => item.id));
    expect((await unfinished()).filter((job) => ids.has(job.id))).toHaveLength(0);
    const [providerBatch] = await db.providerBatch.findMany({ where: { batchId } });
    await economy.takeBackForOnline(providerBatch?.id ?? "", [items[0]?.id ?? ""]);
    expect((await unfinished()).filter((job) => ids.has(job.id)).map((job) => job.id)).toEqual([
      items[0]?.id,
    ]);
  });

  it("keeps submitting past half its submit lease (it renews its own lease; another scheduler stays out)", async () => {
    const userId = await createUser();
    const [first, second] = [scheduler("online", router, 60_000), scheduler("online", router, 60_000)];
    const early = await economyBatch(userId, 2);
    await first.runOnce();
    expect(providerBatchOf(early)).toBeDefined();
    // Past half the lease by the schedulers' clock (when the holder renews it), long before
    // Redis lets it lapse: no sleep, so a slow machine cannot make the lease run out.
    const realNow = Date.now.bind(Date);
    const clock = vi.spyOn(Date, "now").mockImplementation(() => realNow() + 31_000);
    try {
      const late = await economyBatch(userId, 2);
      await second.runOnce();
      expect(providerBatchOf(late)).toBeUndefined();
      await first.runOnce();
      expect(providerBatchOf(late)).toBeDefined();
    } finally {
      clock.mockRestore();
    }
  });

  it("gives up its submit lease when it stops: another scheduler submits at once", async () => {
    const userId = await createUser();
    const [first, second] = [scheduler("online", router, 300_000), scheduler("online", router, 300_000)];
    const early = await economyBatch(userId, 2);
    await first.runOnce();
    expect(providerBatchOf(early)).toBeDefined();
    const late = await economyBatch(userId, 2);
    await second.runOnce();
    expect(providerBatchOf(late)).toBeUndefined();
    await first.stop();
    await second.runOnce();
    expect(providerBatchOf(late)).toBeDefined();
  });

  it("polls one provider batch from one scheduler at a time", async () => {
    server.batches.setPollsUntilEnd(100);
    const userId = await createUser();
    const batchId = await economyBatch(userId, 3);
    const [first, second] = [scheduler(), scheduler()];
    await first.runOnce();
    const retrievesBefore = server.requests.filter((request) => request.method === "GET").length;
    // Due now (its next poll was set 1 ms ahead, which a fast machine has not reached yet).
    await db.$executeRaw`UPDATE provider_batches SET next_poll_at = now() WHERE batch_id = ${batchId}::uuid`;
    const leased = await economy.leaseDue(10, 60_000);
    expect(leased.filter((row) => row.batchId === batchId)).toHaveLength(1);
    // Leased above: neither scheduler may poll it now.
    await Promise.all([first.runOnce(), second.runOnce()]);
    expect(server.requests.filter((request) => request.method === "GET").length).toBe(retrievesBefore);
  });
});

describe("EconomyScheduler on Anthropic Message Batches", () => {
  let anthropic: FakeAnthropicServer;
  let anthropicConfig: RouterConfig;
  let anthropicRouter: ProviderRouter;

  beforeAll(async () => {
    anthropic = await startFakeAnthropicServer({ apiKey: "sk-ant-economy" });
    anthropicConfig = buildRouterConfig(
      defaultProvidersFile({
        defaultProvider: "anthropic",
        anthropic: { apiKey: "sk-ant-economy", baseUrl: anthropic.url },
      }),
      { source: "test" },
    );
    anthropicRouter = new ProviderRouter({
      config: () => anthropicConfig,
      state: new RedisRouterState({
        redis,
        prefix: `t${randomBytes(5).toString("hex")}`,
        breaker: () => anthropicConfig.breaker,
      }),
    });
  });

  afterAll(async () => {
    await anthropic?.close();
  });

  it("runs 1,000 items through one message batch at Anthropic's batch prices", async () => {
    const userId = await createUser();
    const batchId = await economyBatch(userId, 1_000);
    await runUntilCollected(scheduler("online", anthropicRouter), batchId);
    const sent = [...anthropic.batches.batches.values()];
    expect(sent.map((batch) => batch.requests.length)).toEqual([1_000]);
    expect(anthropic.requests.filter((request) => request.path === "/v1/messages")).toHaveLength(0);
    expect(await db.batch.findUniqueOrThrow({ where: { id: batchId } })).toMatchObject({
      status: "completed",
      completedCount: 1_000,
    });
    const usage = await db.usageRecord.findMany({ where: { userId } });
    expect(usage).toHaveLength(1_000);
    let tokens = 0;
    for (const record of usage) {
      const priced = {
        provider: "anthropic",
        model: "claude-sonnet-4-5",
        usage: { inputTokens: record.inputTokens, outputTokens: record.outputTokens },
      };
      expect(record).toMatchObject({ provider: "anthropic", model: "claude-sonnet-4-5" });
      expect(Number(record.costMicroUsd)).toBe(
        anthropicConfig.prices.costMicroUsd({ ...priced, tier: "batch" }).costMicroUsd,
      );
      expect(Number(record.onlineCostMicroUsd)).toBe(
        anthropicConfig.prices.costMicroUsd(priced).costMicroUsd,
      );
      tokens += record.inputTokens + record.outputTokens;
    }
    expect((await ledger.status(userId)).kinds.textTokens).toMatchObject({ used: tokens, reserved: 0 });
  }, 120_000);
});

describe("EconomyScheduler on Gemini batch mode", () => {
  let gemini: FakeGeminiServer;
  let geminiConfig: RouterConfig;
  let geminiRouter: ProviderRouter;

  beforeAll(async () => {
    gemini = await startFakeGeminiServer({ apiKey: "gemini-economy" });
    geminiConfig = buildRouterConfig(
      defaultProvidersFile({
        defaultProvider: "gemini",
        gemini: { apiKey: "gemini-economy", baseUrl: gemini.url },
      }),
      { source: "test" },
    );
    geminiRouter = new ProviderRouter({
      config: () => geminiConfig,
      state: new RedisRouterState({
        redis,
        prefix: `t${randomBytes(5).toString("hex")}`,
        breaker: () => geminiConfig.breaker,
      }),
    });
  });

  afterAll(async () => {
    await gemini?.close();
  });

  it("runs 1,000 items through one batch at Gemini's batch prices", async () => {
    const userId = await createUser();
    const batchId = await economyBatch(userId, 1_000);
    await runUntilCollected(scheduler("online", geminiRouter), batchId);
    const sent = [...gemini.batches.batches.values()];
    expect(sent.map((batch) => batch.requests.length)).toEqual([1_000]);
    expect(gemini.requests.filter((request) => request.path.endsWith(":generateContent"))).toHaveLength(0);
    expect(await db.batch.findUniqueOrThrow({ where: { id: batchId } })).toMatchObject({
      status: "completed",
      completedCount: 1_000,
    });
    const usage = await db.usageRecord.findMany({ where: { userId } });
    expect(usage).toHaveLength(1_000);
    let tokens = 0;
    for (const record of usage) {
      const priced = {
        provider: "gemini",
        model: "gemini-2.5-flash",
        usage: { inputTokens: record.inputTokens, outputTokens: record.outputTokens },
      };
      expect(record).toMatchObject({ provider: "gemini", model: "gemini-2.5-flash" });
      expect(Number(record.costMicroUsd)).toBe(
        geminiConfig.prices.costMicroUsd({ ...priced, tier: "batch" }).costMicroUsd,
      );
      expect(Number(record.onlineCostMicroUsd)).toBe(geminiConfig.prices.costMicroUsd(priced).costMicroUsd);
      tokens += record.inputTokens + record.outputTokens;
    }
    expect((await ledger.status(userId)).kinds.textTokens).toMatchObject({ used: tokens, reserved: 0 });
  }, 120_000);

  it("finds Gemini's batch of a submission cut off before its id was recorded (by its display name)", async () => {
    gemini.batches.setPollsUntilEnd(1);
    await expectCutOffSubmissionFound(geminiRouter, "gemini", () => gemini.batches.batches.size);
  });
});
