import type { GenqEvent, JobType } from "@genq/core";
import type { Prisma } from "./generated/prisma/client.ts";

/** A job that just reached a terminal status, as the transaction that finished it saw it. */
export interface FinishedJob {
  id: string;
  userId: string;
  type: JobType;
  status: "completed" | "failed" | "canceled";
  /** The batch the job is an item of, and its index there; null for a single job. */
  batchId: string | null;
  itemIndex: number | null;
  /** Null while a batch item was still held back by the fair dispatcher. */
  dispatchedAt: Date | null;
  /** The per-request webhook URL, if the job has one. */
  webhookUrl: string | null;
  errorCode: string | null;
  errorMessage: string | null;
  finishedAt: Date | null;
}

/** The columns {@link FinishedJob} is read from, for `select` in terminal updates. */
export const FINISHED_JOB_SELECT = {
  id: true,
  userId: true,
  type: true,
  status: true,
  batchId: true,
  itemIndex: true,
  dispatchedAt: true,
  webhookUrl: true,
  errorCode: true,
  errorMessage: true,
  finishedAt: true,
} as const satisfies Prisma.JobSelect;

/**
 * Runs inside every transaction that moves jobs to a terminal status (complete,
 * fail, cancel, batch cancel), after the update. What must happen exactly once per
 * finished job goes here: batch counters, webhook outbox rows. Returns the events
 * the transition caused (job events, and batch events it triggered), which the
 * after-commit listener receives. A throw rolls the transition back.
 */
export type JobsFinishedHook = (
  transaction: Prisma.TransactionClient,
  jobs: readonly FinishedJob[],
) => Promise<readonly GenqEvent[]>;

/**
 * Runs after such a transaction committed, for best-effort notifications (live
 * events over Redis). A loss here loses nothing durable: the rows say what happened.
 */
export type JobsFinishedListener = (jobs: readonly FinishedJob[], events: readonly GenqEvent[]) => void;

/** The hooks a {@link JobRepository} runs when jobs finish. */
export interface JobFinishedHooks {
  inTransaction?: JobsFinishedHook | undefined;
  afterCommit?: JobsFinishedListener | undefined;
}

/** Narrows a row selected with {@link FINISHED_JOB_SELECT}; callers only pass terminal rows. */
export function toFinishedJob(row: Omit<FinishedJob, "status"> & { status: string }): FinishedJob {
  return { ...row, status: row.status as FinishedJob["status"] };
}
