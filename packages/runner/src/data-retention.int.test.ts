import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { newId } from "@genq/core";
import {
  AccountRepository,
  createPrismaClient,
  type Database,
  JobRepository,
  RetentionRepository,
} from "@genq/db";
import { createTestDatabase, type TestDatabase } from "@genq/db/testing";
import { JobLifecycle } from "@genq/lifecycle";
import { QuotaLedger } from "@genq/quota";
import { createStorage, type LocalStorage } from "@genq/storage";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RetentionPolicy, sweepExpiredData } from "./data-retention.ts";

const DAY_MS = 86_400_000;
const POLICY: RetentionPolicy = {
  jobsDays: 90,
  providerCallsDays: 30,
  webhookMessagesDays: 30,
  uploadsDays: 7,
};

/**
 * Rows are created now (ids are UUIDv7 of the real clock) and the sweep runs "100
 * days later" (`now`); a row that must count as recent gets its timestamps moved
 * past that day's cutoffs.
 */
const LATER = new Date(Date.now() + 100 * DAY_MS);
const RECENT = new Date(LATER.getTime() - DAY_MS);
/** Within the jobs' retention (90 days), past the provider calls' (30 days). */
const TWO_MONTHS_BEFORE = new Date(LATER.getTime() - 60 * DAY_MS);

let database: TestDatabase;
let db: Database;
let jobs: JobRepository;
let lifecycle: JobLifecycle;
let accounts: AccountRepository;
let ledger: QuotaLedger;
let storage: LocalStorage;
let directory: string;

beforeAll(async () => {
  database = await createTestDatabase();
  db = createPrismaClient({ connectionString: database.url, maxConnections: 4 });
  jobs = new JobRepository({ db });
  lifecycle = new JobLifecycle({ db });
  accounts = new AccountRepository({ db });
  ledger = new QuotaLedger({ db });
  directory = await mkdtemp(join(tmpdir(), "genq-retention-"));
  storage = createStorage({
    driver: "local",
    directory,
    signingSecret: "s".repeat(32),
    publicBaseUrl: "http://127.0.0.1/v1/assets",
  });
  await storage.ensureReady();
});

afterAll(async () => {
  await db?.$disconnect();
  await database?.drop();
  await storage?.close();
  await rm(directory, { recursive: true, force: true });
});

async function createUser(): Promise<string> {
  const { user } = await accounts.createUser({
    email: `${randomBytes(6).toString("hex")}@example.com`,
    plan: "basic",
  });
  return user.id;
}

/** A job run to completion (usage record, provider calls, quota settled) through the repository. */
async function completedJob(userId: string, type: "text" | "image" = "text"): Promise<string> {
  const { job } = await jobs.create({ userId, type, priority: 5, input: { prompt: "hello" } });
  await ledger.reserve({
    jobId: job.id,
    userId,
    textTokens: type === "text" ? 200 : 0,
    images: type === "image" ? 1 : 0,
  });
  const claim = await lifecycle.claim(job.id);
  const claimed = claim.outcome === "claimed" ? claim.job : null;
  const startedAt = new Date();
  await lifecycle.complete({
    jobId: job.id,
    attempt: claimed!.attempts,
    result: { text: "hi" },
    provider: "mock",
    model: type === "text" ? "mock-text" : "mock-image",
    usage: { inputTokens: 100, outputTokens: 50, ...(type === "image" ? { images: 1 } : {}) },
    costMicroUsd: 1_234,
    calls: [
      {
        seq: 1,
        provider: "mock",
        model: "m",
        startedAt,
        latencyMs: 3,
        outcome: "error",
        errorCode: "timeout",
      },
      { seq: 2, provider: "mock", model: "m", startedAt, latencyMs: 5, outcome: "ok" },
    ],
    charge: { textTokens: type === "text" ? 150 : 0, images: type === "image" ? 1 : 0, costMicroUsd: 1_234 },
  });
  return job.id;
}

/** Moves a job's end to `at` (its provider calls stay as old as they are). */
async function finishedAt(jobId: string, at: Date): Promise<void> {
  await db.job.update({ where: { id: jobId }, data: { finishedAt: at } });
}

async function storedUpload(userId: string): Promise<{ id: string; key: string }> {
  const id = newId();
  const key = `uploads/${userId}/${id}`;
  await storage.put(key, new Uint8Array([1, 2, 3]), { contentType: "image/png" });
  await db.upload.create({
    data: {
      id,
      userId,
      key,
      contentType: "image/png",
      bytes: 3,
      sha256: "0".repeat(64),
      width: 1,
      height: 1,
    },
  });
  return { id, key };
}

async function webhookMessage(userId: string, status: string): Promise<string> {
  const id = newId();
  await db.webhookMessage.create({
    data: {
      id,
      userId,
      url: "https://receiver.example/hook",
      eventType: "job.completed",
      payload: {},
      status,
      deliveries: { create: [{ id: newId(), attempt: 1, outcome: "failed", latencyMs: 7 }] },
    },
  });
  return id;
}

/** Counts the deletes a repository makes, and the size of each. */
function countingRepository(): { repository: RetentionRepository; jobDeletes: number[] } {
  const repository = new RetentionRepository({ db });
  const jobDeletes: number[] = [];
  const deleteJobs = repository.deleteJobs.bind(repository);
  repository.deleteJobs = async (ids) => {
    if (ids.length > 0) jobDeletes.push(ids.length);
    return deleteJobs(ids);
  };
  return { repository, jobDeletes };
}

describe("data retention", () => {
  it("deletes expired jobs, calls, webhook messages and uploads in chunks, keeps recent rows and the usage report", async () => {
    const userId = await createUser();
    const old = [] as string[];
    for (let index = 0; index < 5; index++) old.push(await completedJob(userId));
    const oldImage = await completedJob(userId, "image");
    const asset = { key: `assets/${userId}/${oldImage}/0.png` };
    await storage.put(asset.key, new Uint8Array([9]), { contentType: "image/png" });
    await db.asset.create({
      data: {
        id: newId(),
        jobId: oldImage,
        userId,
        index: 0,
        key: asset.key,
        contentType: "image/png",
        bytes: 1,
        sha256: "0".repeat(64),
      },
    });
    const { job: failed } = await jobs.create({ userId, type: "text", priority: 5, input: { prompt: "x" } });
    await lifecycle.claim(failed.id);
    await lifecycle.fail(failed.id, { code: "timeout", message: "too slow" });
    const recent = await completedJob(userId);
    await finishedAt(recent, TWO_MONTHS_BEFORE);
    const { job: queued } = await jobs.create({
      userId,
      type: "text",
      priority: 5,
      input: { prompt: "waits" },
    });

    // A finished batch goes with its items; a running batch keeps its finished items.
    const finishedBatch = newId();
    const runningBatch = newId();
    for (const [id, status] of [
      [finishedBatch, "completed"],
      [runningBatch, "running"],
    ] as const) {
      await db.batch.create({
        data: {
          id,
          userId,
          type: "text",
          priority: 5,
          total: 2,
          status,
          ...(status === "completed" ? { finishedAt: new Date() } : {}),
        },
      });
      for (let index = 0; index < 2; index++) {
        await db.job.create({
          data: {
            id: newId(),
            userId,
            type: "text",
            priority: 5,
            input: {},
            batchId: id,
            itemIndex: index,
            status: "completed",
            finishedAt: new Date(),
          },
        });
      }
    }

    const delivered = await webhookMessage(userId, "delivered");
    const pending = await webhookMessage(userId, "pending");
    const recentMessage = await webhookMessage(userId, "failed");
    await db.webhookMessage.update({ where: { id: recentMessage }, data: { createdAt: RECENT } });

    const oldUpload = await storedUpload(userId);
    const namedUpload = await storedUpload(userId);
    const { job: edit } = await jobs.create({
      userId,
      type: "image",
      priority: 5,
      input: { operation: "edit", prompt: "p", image: namedUpload.id },
    });
    const recentUpload = await storedUpload(userId);
    await db.upload.update({ where: { id: recentUpload.id }, data: { createdAt: RECENT } });

    const report = () =>
      Promise.all(
        (["type", "day", "model"] as const).map((groupBy) =>
          ledger.usageReport({ userId, from: new Date(0), to: new Date(LATER.getTime() + DAY_MS), groupBy }),
        ),
      ).then((reports) => reports.map(({ projection: _projection, ...rest }) => rest));
    const reportBefore = await report();
    const quotaBefore = await ledger.status(userId);
    expect(reportBefore[0]?.totals).toMatchObject({ jobs: 7, images: 1, costMicroUsd: 7 * 1_234 });

    // A run without budget deletes nothing and says it is not done.
    const { repository, jobDeletes } = countingRepository();
    const starved = await sweepExpiredData({
      retention: repository,
      storage,
      policy: POLICY,
      now: LATER,
      budgetMs: 0,
    });
    expect(starved).toMatchObject({ jobs: 0, complete: false });

    const outcome = await sweepExpiredData({
      retention: repository,
      storage,
      policy: POLICY,
      now: LATER,
      chunkSize: 2,
    });
    expect(outcome).toEqual({
      jobs: 5 + 1 + 1 + 2, // old text jobs, the image job, the failed job, the finished batch's items
      batches: 1,
      providerCalls: 2, // the kept job's calls (the expired jobs' calls went with them)
      webhookMessages: 1,
      uploads: 1,
      complete: true,
    });
    // In chunks of at most two.
    expect(jobDeletes.length).toBeGreaterThanOrEqual(5);
    expect(Math.max(...jobDeletes)).toBeLessThanOrEqual(2);

    const left = await db.job.findMany({ where: { userId }, select: { id: true, batchId: true } });
    expect(left.map((job) => job.id).sort()).toEqual(
      [
        recent,
        queued.id,
        edit.id,
        ...(await db.job.findMany({ where: { batchId: runningBatch }, select: { id: true } })).map(
          (job) => job.id,
        ),
      ].sort(),
    );
    expect(left.filter((job) => job.batchId === runningBatch)).toHaveLength(2);
    expect(await db.batch.findMany({ where: { userId }, select: { id: true } })).toEqual([
      { id: runningBatch },
    ]);
    expect(await db.asset.count({ where: { jobId: oldImage } })).toBe(0);
    expect(await storage.head(asset.key)).toBeUndefined();
    expect(await db.providerCall.count({ where: { jobId: { in: old } } })).toBe(0);

    expect(
      (await db.webhookMessage.findMany({ where: { userId }, select: { id: true } })).map((m) => m.id).sort(),
    ).toEqual([pending, recentMessage].sort());
    expect(await db.webhookDelivery.count({ where: { messageId: delivered } })).toBe(0);

    expect(
      (await db.upload.findMany({ where: { userId }, select: { id: true } })).map((u) => u.id).sort(),
    ).toEqual([namedUpload.id, recentUpload.id].sort());
    expect(await storage.head(oldUpload.key)).toBeUndefined();
    expect(await storage.head(namedUpload.key)).toBeDefined();

    // The usage report and the quota are what they were: usage records outlive their jobs.
    expect(await db.usageRecord.count({ where: { userId } })).toBe(7);
    expect(await report()).toEqual(reportBefore);
    expect(await ledger.status(userId)).toEqual(quotaBefore);

    // Nothing is left to do.
    expect(
      await sweepExpiredData({ retention: repository, storage, policy: POLICY, now: LATER }),
    ).toMatchObject({
      jobs: 0,
      batches: 0,
      providerCalls: 0,
      webhookMessages: 0,
      uploads: 0,
    });
  });

  it("keeps everything when every retention is 0", async () => {
    const userId = await createUser();
    const id = await completedJob(userId);
    await webhookMessage(userId, "delivered");
    await storedUpload(userId);
    const outcome = await sweepExpiredData({
      retention: new RetentionRepository({ db }),
      storage,
      policy: { jobsDays: 0, providerCallsDays: 0, webhookMessagesDays: 0, uploadsDays: 0 },
      now: new Date(LATER.getTime() + 10_000 * DAY_MS),
    });
    expect(outcome).toMatchObject({
      jobs: 0,
      providerCalls: 0,
      webhookMessages: 0,
      uploads: 0,
      complete: true,
    });
    expect(await db.job.count({ where: { id } })).toBe(1);
    expect(await db.providerCall.count({ where: { jobId: id } })).toBe(2);
  });
});
