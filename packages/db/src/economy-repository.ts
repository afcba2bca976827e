import { newId } from "@genq/core";
import type { ClaimedBatchItem } from "./batch-repository.ts";
import type { Database } from "./client.ts";
import type { JobType } from "./generated/prisma/enums.ts";

/** What a batch's finished items cost, and what the same tokens would have cost online. */
export interface BatchCost {
  totalMicroUsd: number;
  onlineMicroUsd: number;
  savingsMicroUsd: number;
}

/** A running economy batch with items not yet submitted to a provider. */
export interface EconomyCandidate {
  batchId: string;
  userId: string;
}

/** A provider batch leased for one poll. */
export interface LeasedProviderBatch {
  id: string;
  batchId: string;
  userId: string;
  provider: string;
  model: string;
  keyId: string;
  /** Null: its submission never finished (the process died); see {@link EconomyRepository.leaseDue}. */
  externalId: string | null;
  status: "submitting" | "running" | "canceling";
  polls: number;
  cancelSent: boolean;
  /** The genq batch's cancel was requested. */
  batchCancelRequested: boolean;
}

/** An item of a provider batch: the job and the claimed attempt that fences its completion. */
export interface ProviderBatchItemRow {
  jobId: string;
  attempt: number;
}

/** What the same tokens would have cost online, per completed economy item. */
export interface OnlineCost {
  jobId: string;
  onlineCostMicroUsd: number;
}

/**
 * The economy tier's rows: provider batches (one per provider, model and key of a
 * genq batch) and their items, leased one poller at a time. Job rows move only
 * through the lifecycle; this records where they went.
 */
export class EconomyRepository {
  readonly #db: Database;

  constructor(options: { db: Database }) {
    this.#db = options.db;
  }

  /** Running economy batches, not being canceled, with items not yet submitted; oldest first. */
  async candidates(limit = 100): Promise<EconomyCandidate[]> {
    const rows = await this.#db.$queryRaw<Array<{ id: string; user_id: string }>>`
      SELECT b.id, b.user_id FROM batches b
       WHERE b.status = 'running' AND b.tier = 'economy' AND NOT b.cancel_requested
         AND b.dispatched_count < b.total
       ORDER BY b.created_at, b.id
       LIMIT ${limit}`;
    return rows.map((row) => ({ batchId: row.id, userId: row.user_id }));
  }

  /**
   * Records a provider batch about to be submitted, with its items, in one
   * transaction: from here on the reconciler leaves the items to the economy
   * scheduler. Returns its id.
   */
  async create(batch: {
    batchId: string;
    userId: string;
    provider: string;
    model: string;
    keyId: string;
    items: readonly ProviderBatchItemRow[];
    leaseMs: number;
  }): Promise<string> {
    const id = newId();
    const items = JSON.stringify(batch.items.map((item) => ({ job_id: item.jobId, attempt: item.attempt })));
    await this.#db.$transaction([
      this.#db.$executeRaw`
        INSERT INTO provider_batches (id, batch_id, user_id, provider, model, key_id, item_count, lease_until, updated_at)
        VALUES (${id}::uuid, ${batch.batchId}::uuid, ${batch.userId}::uuid, ${batch.provider}, ${batch.model},
                ${batch.keyId}, ${batch.items.length}, now() + ${batch.leaseMs} * interval '1 millisecond', now())`,
      this.#db.$executeRaw`
        INSERT INTO provider_batch_items (provider_batch_id, job_id, attempt)
        SELECT ${id}::uuid, item.job_id, item.attempt
          FROM jsonb_to_recordset(${items}::jsonb) AS item(job_id uuid, attempt int)`,
    ]);
    return id;
  }

  /**
   * The provider accepted the batch: poll it first after `firstPollMs`. False when the row
   * ended meanwhile (its submission was given up and its items fell back) or already names
   * another provider batch: the caller's batch then runs nothing of genq's and must be canceled.
   */
  async markSubmitted(id: string, externalId: string, firstPollMs: number): Promise<boolean> {
    const updated = await this.#db.$executeRaw`
      UPDATE provider_batches
         SET external_id = ${externalId}, status = 'running', lease_until = NULL,
             next_poll_at = now() + ${firstPollMs} * interval '1 millisecond', updated_at = now()
       WHERE id = ${id}::uuid AND status <> 'ended'
         AND (external_id IS NULL OR external_id = ${externalId})`;
    return updated === 1;
  }

  /**
   * Leases up to `limit` provider batches due for a poll (one poller at a time per
   * provider batch, for `leaseMs`): running or canceling ones whose next poll is
   * due, any whose genq batch was canceled and the provider not told yet, and
   * `submitting` ones whose submitter's lease lapsed (it died mid-submission).
   */
  async leaseDue(limit: number, leaseMs: number): Promise<LeasedProviderBatch[]> {
    const rows = await this.#db.$queryRaw<
      Array<{
        id: string;
        batch_id: string;
        user_id: string;
        provider: string;
        model: string;
        key_id: string;
        external_id: string | null;
        status: LeasedProviderBatch["status"];
        polls: number;
        cancel_sent: boolean;
        batch_cancel_requested: boolean;
      }>
    >`
      WITH due AS (
        SELECT p.id FROM provider_batches p JOIN batches b ON b.id = p.batch_id
         WHERE p.status IN ('submitting', 'running', 'canceling')
           AND (p.lease_until IS NULL OR p.lease_until < now())
           AND (p.status = 'submitting' OR p.next_poll_at <= now() OR (b.cancel_requested AND NOT p.cancel_sent))
         ORDER BY p.next_poll_at
         LIMIT ${limit}
         FOR UPDATE OF p SKIP LOCKED
      )
      UPDATE provider_batches p
         SET lease_until = now() + ${leaseMs} * interval '1 millisecond', updated_at = now()
        FROM due, batches b
       WHERE p.id = due.id AND b.id = p.batch_id
      RETURNING p.id, p.batch_id, p.user_id, p.provider, p.model, p.key_id, p.external_id, p.status, p.polls,
                p.cancel_sent, b.cancel_requested AS batch_cancel_requested`;
    return rows.map((row) => ({
      id: row.id,
      batchId: row.batch_id,
      userId: row.user_id,
      provider: row.provider,
      model: row.model,
      keyId: row.key_id,
      externalId: row.external_id,
      status: row.status,
      polls: row.polls,
      cancelSent: row.cancel_sent,
      batchCancelRequested: row.batch_cancel_requested,
    }));
  }

  /** Still running at the provider: poll again after `delayMs`, and give the lease back. */
  async scheduleNextPoll(id: string, delayMs: number, status: "running" | "canceling"): Promise<void> {
    await this.#db.$executeRaw`
      UPDATE provider_batches
         SET status = ${status}, polls = polls + 1, lease_until = NULL,
             next_poll_at = now() + ${delayMs} * interval '1 millisecond', updated_at = now()
       WHERE id = ${id}::uuid`;
  }

  /**
   * The provider was asked to cancel: flags the items still running as cancel
   * requested (as `JobLifecycle.cancel` flags an active job), so the lifecycle
   * cancels them when the provider reports them not run.
   */
  async markCancelSent(id: string): Promise<void> {
    await this.#db.$transaction([
      this.#db.$executeRaw`
        UPDATE provider_batches SET cancel_sent = true, status = 'canceling', updated_at = now()
         WHERE id = ${id}::uuid`,
      this.#db.$executeRaw`
        UPDATE jobs j SET cancel_requested = true, updated_at = now()
          FROM provider_batch_items i
         WHERE i.provider_batch_id = ${id}::uuid AND j.id = i.job_id AND j.status = 'active'`,
    ]);
  }

  /** The items of a provider batch. */
  async items(id: string): Promise<ProviderBatchItemRow[]> {
    return this.#db.$queryRaw<ProviderBatchItemRow[]>`
      SELECT job_id AS "jobId", attempt FROM provider_batch_items WHERE provider_batch_id = ${id}::uuid`;
  }

  /**
   * Takes items back from a provider batch to run them online: removes them from it
   * (so the reconciler watches them again) and returns them, still unfinished, for
   * the queues. Items that finished meanwhile are not returned.
   */
  async takeBackForOnline(id: string, jobIds: readonly string[]): Promise<ClaimedBatchItem[]> {
    if (jobIds.length === 0) return [];
    const ids = [...jobIds];
    const [, rows] = await this.#db.$transaction([
      this.#db.$executeRaw`
        DELETE FROM provider_batch_items WHERE provider_batch_id = ${id}::uuid AND job_id = ANY (${ids}::uuid[])`,
      this.#db.$queryRaw<Array<{ id: string; type: JobType; priority: number }>>`
        SELECT id, type, priority FROM jobs
         WHERE id = ANY (${ids}::uuid[]) AND status IN ('queued', 'active') ORDER BY item_index`,
    ]);
    return rows.map((row) => ({ id: row.id, type: row.type, priority: row.priority }));
  }

  /** The provider batch ended and every item was handed on. */
  async finish(id: string, outcome: string, message?: string): Promise<void> {
    await this.#db.$executeRaw`
      UPDATE provider_batches
         SET status = 'ended', outcome = ${outcome}, error_message = ${message ?? null}, lease_until = NULL,
             ended_at = now(), updated_at = now()
       WHERE id = ${id}::uuid`;
  }

  /**
   * Notes what items of a provider batch would have cost online, before they complete: the
   * batch view's saving is then right from the moment the batch completes.
   */
  async noteOnlineCosts(providerBatchId: string, costs: readonly OnlineCost[]): Promise<void> {
    if (costs.length === 0) return;
    const rows = JSON.stringify(costs.map((cost) => ({ job_id: cost.jobId, cost: cost.onlineCostMicroUsd })));
    await this.#db.$executeRaw`
      UPDATE provider_batch_items i SET online_cost_micro_usd = c.cost
        FROM jsonb_to_recordset(${rows}::jsonb) AS c(job_id uuid, cost bigint)
       WHERE i.provider_batch_id = ${providerBatchId}::uuid AND i.job_id = c.job_id`;
  }

  /** Records what completed economy items would have cost online (the usage report). */
  async recordOnlineCosts(costs: readonly OnlineCost[]): Promise<void> {
    if (costs.length === 0) return;
    const rows = JSON.stringify(costs.map((cost) => ({ job_id: cost.jobId, cost: cost.onlineCostMicroUsd })));
    await this.#db.$executeRaw`
      UPDATE usage_records u SET online_cost_micro_usd = c.cost
        FROM jsonb_to_recordset(${rows}::jsonb) AS c(job_id uuid, cost bigint)
       WHERE u.job_id = c.job_id`;
  }

  /**
   * The cost of a batch's items so far (from their usage records) and their online
   * equivalent: items run online count the same in both.
   */
  async batchCost(batchId: string): Promise<BatchCost> {
    const [row] = await this.#db.$queryRaw<Array<{ total: bigint | null; online: bigint | null }>>`
      SELECT sum(u.cost_micro_usd)::bigint AS total,
             sum(COALESCE(u.online_cost_micro_usd, i.online_cost_micro_usd, u.cost_micro_usd))::bigint AS online
        FROM jobs j JOIN usage_records u ON u.job_id = j.id
        LEFT JOIN LATERAL (
          SELECT max(online_cost_micro_usd) AS online_cost_micro_usd FROM provider_batch_items WHERE job_id = j.id
        ) i ON true
       WHERE j.batch_id = ${batchId}::uuid AND j.status = 'completed'`;
    const total = Number(row?.total ?? 0n);
    const online = Number(row?.online ?? 0n);
    return { totalMicroUsd: total, onlineMicroUsd: online, savingsMicroUsd: online - total };
  }

  /** Asks for a prompt poll of a batch's provider batches (its cancel was requested). */
  async pollSoon(batchId: string): Promise<void> {
    await this.#db.$executeRaw`
      UPDATE provider_batches SET next_poll_at = now(), updated_at = now()
       WHERE batch_id = ${batchId}::uuid AND status IN ('running', 'canceling')`;
  }
}
