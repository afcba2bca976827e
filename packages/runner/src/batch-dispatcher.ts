import { randomUUID } from "node:crypto";
import type { BatchRepository, DispatchCandidate, Plan } from "@genq/db";
import type { JobQueues } from "@genq/queue";
import type { Logger } from "pino";

/** How many times a tenant's base cap each plan gets. */
export const DEFAULT_PLAN_WEIGHTS: Readonly<Record<Plan, number>> = {
  basic: 1,
  professional: 2,
  enterprise: 4,
};

/** Options for {@link BatchDispatcher}. */
export interface BatchDispatcherOptions {
  batches: BatchRepository;
  queues: JobQueues;
  logger: Logger;
  /**
   * The most batch items of one tenant (user) on the `basic` plan that may be in
   * BullMQ and unfinished at a time; other plans get a multiple (`planWeights`).
   */
  tenantCap: number;
  planWeights?: Readonly<Record<Plan, number>> | undefined;
  /** How often a pass runs; {@link BatchDispatcher.wake} runs one sooner. Default 200 ms. */
  intervalMs?: number | undefined;
  /** Items released per pass at most, over all tenants. Default 10,000. */
  maxPerPass?: number | undefined;
  /** Items one tenant gets per round-robin turn (times its plan weight). Default 100. */
  quantum?: number | undefined;
}

interface Tenant {
  userId: string;
  /** How many more items the tenant may have outstanding now. */
  free: number;
  weight: number;
  /** Its batches with held-back items, oldest first. */
  batches: DispatchCandidate[];
}

/** Minimum gap between two passes a wake-up asks for, so a burst of completions costs one pass. */
const WAKE_GAP_MS = 50;
/**
 * A tenant is refilled once a quarter of its cap is free (or all its remaining items
 * fit): releasing a handful of items per completion would cost a claim transaction
 * each and double the database work of a busy batch.
 */
const REFILL_FRACTION = 4;
const LEASE_NAME = "batch-dispatcher";
/** Items claimed per transaction (and held in memory) at most. */
const CLAIM_CHUNK = 5_000;

/**
 * The fair dispatcher: releases held-back batch items to BullMQ so that no tenant
 * has more than its cap of batch items waiting or running at a time. A job
 * submitted later at the same priority therefore waits behind at most the caps
 * of the tenants with batches (plus what is already running), never behind a whole
 * batch. Tenants take turns (round-robin, a plan-weighted quantum each turn, the
 * starting tenant rotating every pass); within a tenant, the oldest batch goes
 * first. One process at a time dispatches (a Redis lease); the others stand by.
 */
export class BatchDispatcher {
  readonly #options: BatchDispatcherOptions;
  readonly #weights: Readonly<Record<Plan, number>>;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<number> | undefined;
  #again = false;
  #wakeTimer: NodeJS.Timeout | undefined;
  #lastPassAt = 0;
  #leaseUntil = 0;
  /** This instance's token in the dispatch lease. */
  readonly #holder = randomUUID();
  #turn = 0;
  #stopped = true;
  /** Whether the last pass saw a running batch; if not, wake-ups wait for the next tick. */
  #batchesRunning = true;

  constructor(options: BatchDispatcherOptions) {
    if (!Number.isInteger(options.tenantCap) || options.tenantCap < 1)
      throw new RangeError("tenantCap must be a positive integer");
    this.#options = options;
    this.#weights = options.planWeights ?? DEFAULT_PLAN_WEIGHTS;
    this.#intervalMs = options.intervalMs ?? 200;
  }

  /** The cap of a tenant on `plan`. */
  capFor(plan: Plan): number {
    return this.#options.tenantCap * (this.#weights[plan] ?? 1);
  }

  /** Starts periodic passes. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#stopped = false;
    this.#timer = setInterval(() => this.#tick(), this.#intervalMs);
    this.#timer.unref();
    this.#tick();
  }

  /** Asks for a pass soon (items finished, so tenants have room again). Cheap to call often. */
  wake(): void {
    if (this.#stopped || !this.#batchesRunning) return;
    if (this.#running !== undefined) {
      this.#again = true;
      return;
    }
    if (this.#wakeTimer !== undefined) return;
    const delay = Math.max(0, this.#lastPassAt + WAKE_GAP_MS - Date.now());
    this.#wakeTimer = setTimeout(() => {
      this.#wakeTimer = undefined;
      this.#tick();
    }, delay);
    this.#wakeTimer.unref();
  }

  /** Stops passes and waits for one in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    clearTimeout(this.#wakeTimer);
    this.#timer = undefined;
    this.#wakeTimer = undefined;
    await this.#running?.catch(() => 0);
    // Its successor need not wait out the lease.
    this.#leaseUntil = 0;
    await this.#options.queues.releaseLease(LEASE_NAME, this.#holder).catch(() => undefined);
  }

  #tick(): void {
    if (this.#stopped || this.#running !== undefined) return;
    this.#holdsLease()
      .then((held) => (held ? this.dispatchOnce() : 0))
      .catch((error: unknown) => {
        this.#options.logger.warn({ err: error }, "batch dispatch pass failed; will try again");
      });
  }

  async #holdsLease(): Promise<boolean> {
    // Taken or renewed for ttl: nobody else can hold it before it lapses, so it is ours until then.
    if (Date.now() < this.#leaseUntil) return true;
    const ttlMs = Math.max(1_000, this.#intervalMs * 5);
    const start = Date.now();
    if (!(await this.#options.queues.holdLease(LEASE_NAME, this.#holder, ttlMs))) return false;
    this.#leaseUntil = start + ttlMs - this.#intervalMs;
    return true;
  }

  /** One pass; returns how many items it released. Concurrent calls share a pass. */
  dispatchOnce(): Promise<number> {
    this.#running ??= this.#pass().finally(() => {
      this.#running = undefined;
      this.#lastPassAt = Date.now();
      if (this.#again) {
        this.#again = false;
        this.wake();
      }
    });
    return this.#running;
  }

  async #pass(): Promise<number> {
    const { batches } = this.#options;
    const candidates = await batches.dispatchCandidates();
    this.#batchesRunning = candidates.length > 0;
    const tenants = this.#tenants(candidates);
    if (tenants.length === 0) return 0;
    // Rotate who goes first, so a short budget is not always spent on the same tenants.
    const start = this.#turn++ % tenants.length;
    const order = [...tenants.slice(start), ...tenants.slice(0, start)];
    let budget = this.#options.maxPerPass ?? 10_000;
    const quantum = this.#options.quantum ?? 100;
    let released = 0;
    while (budget > 0) {
      let progress = false;
      for (const tenant of order) {
        if (budget <= 0) break;
        const grant = Math.min(tenant.free, quantum * tenant.weight, budget);
        if (grant <= 0 || tenant.batches.length === 0) continue;
        const count = await this.#releaseFor(tenant, grant);
        tenant.free -= count;
        budget -= count;
        released += count;
        if (count > 0) progress = true;
      }
      if (!progress) break;
    }
    return released;
  }

  #tenants(candidates: readonly DispatchCandidate[]): Tenant[] {
    const byUser = new Map<string, Tenant & { outstanding: number; cap: number; undispatched: number }>();
    for (const candidate of candidates) {
      let tenant = byUser.get(candidate.userId);
      if (tenant === undefined) {
        const cap = this.capFor(candidate.plan);
        tenant = {
          userId: candidate.userId,
          free: 0,
          cap,
          outstanding: 0,
          undispatched: 0,
          weight: this.#weights[candidate.plan] ?? 1,
          batches: [],
        };
        byUser.set(candidate.userId, tenant);
      }
      // Items of a canceling batch still running count against the tenant too.
      tenant.outstanding += Math.max(0, candidate.outstanding);
      if (candidate.undispatched > 0 && !candidate.cancelRequested) {
        tenant.batches.push(candidate);
        tenant.undispatched += candidate.undispatched;
      }
    }
    const tenants = [...byUser.values()];
    for (const tenant of tenants) tenant.free = Math.max(0, tenant.cap - tenant.outstanding);
    return tenants.filter((tenant) => {
      const refillAt = Math.min(Math.max(1, Math.floor(tenant.cap / REFILL_FRACTION)), tenant.undispatched);
      return tenant.batches.length > 0 && tenant.free >= refillAt;
    });
  }

  /** Releases up to `grant` items of a tenant, oldest batch first; returns how many. */
  async #releaseFor(tenant: Tenant, grant: number): Promise<number> {
    const { batches, queues } = this.#options;
    let released = 0;
    while (released < grant && tenant.batches.length > 0) {
      const batch = tenant.batches[0]!;
      const want = Math.min(grant - released, batch.undispatched, CLAIM_CHUNK);
      let items = await batches.claimItems(batch.batchId, want, batch.dispatchCursor);
      // Items below the cursor can be left over (skipped while a cancel held them); look again from 0.
      if (items.length < want && batch.dispatchCursor > 0)
        items = [...items, ...(await batches.claimItems(batch.batchId, want - items.length, 0))];
      if (items.length > 0) {
        try {
          await queues.enqueueBulk(items);
        } catch (error) {
          // Committed as dispatched: the reconciler enqueues them after its grace period.
          this.#options.logger.warn(
            { err: error, batchId: batch.batchId, items: items.length },
            "could not enqueue released batch items; the reconciler will",
          );
        }
      }
      released += items.length;
      batch.undispatched -= items.length;
      batch.dispatchCursor += items.length;
      if (items.length < want || batch.undispatched <= 0) tenant.batches.shift();
    }
    return released;
  }
}
