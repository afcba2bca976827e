import { randomUUID } from "node:crypto";
import { EconomyCollector } from "./economy-collector.ts";
import {
  type EconomySchedulerOptions,
  type ResolvedEconomyOptions,
  resolveEconomyOptions,
} from "./economy-options.ts";
import { EconomySubmitter } from "./economy-submitter.ts";

/** The Redis lease of the submitting pass: one process submits at a time. */
const SUBMIT_LEASE = "economy-submitter";
/** Provider batches leased per pass. */
const POLLS_PER_PASS = 20;
/** Lease rounds per pass at most. */
const MAX_POLL_ROUNDS = 50;

/**
 * The economy tier's scheduler, run by the workers: every `intervalMs` one pass
 * submits the held-back items of economy batches to the providers' batch APIs
 * (one process at a time, a Redis lease) and polls the provider batches that are
 * due. Each provider batch is polled by one process at a time (a row lease in
 * Postgres) with exponential backoff, so a pass is one indexed query when nothing
 * is due: no busy loop, however many batches wait at the providers.
 */
export class EconomyScheduler {
  readonly #options: ResolvedEconomyOptions;
  readonly #submitter: EconomySubmitter;
  readonly #collector: EconomyCollector;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  /** Set by {@link EconomyScheduler.stop}: a pass in progress ends at its next step. */
  #stopped = false;
  #submitLeaseUntil = 0;
  /** This instance's token in the submit lease. */
  readonly #holder = randomUUID();

  constructor(options: EconomySchedulerOptions) {
    this.#options = resolveEconomyOptions(options);
    this.#submitter = new EconomySubmitter(this.#options);
    this.#collector = new EconomyCollector(this.#options, this.#submitter);
  }

  /** Starts periodic passes. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#stopped = false;
    this.#timer = setInterval(() => this.#tick(), this.#options.intervalMs);
    this.#timer.unref();
    this.#tick();
  }

  /** Stops passes, waits for one in progress and gives up the submit lease. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
    this.#submitLeaseUntil = 0;
    await this.#options.queues.releaseLease(SUBMIT_LEASE, this.#holder).catch(() => undefined);
  }

  #tick(): void {
    if (this.#stopped || this.#running !== undefined) return;
    this.runOnce().catch((error: unknown) => {
      this.#options.logger.warn({ err: error }, "economy pass failed; will try again");
    });
  }

  /** One pass (submit, then poll what is due); concurrent calls share a pass. */
  runOnce(): Promise<void> {
    this.#running ??= this.#pass().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #pass(): Promise<void> {
    await this.#submitPass();
    await this.#pollPass();
  }

  async #submitPass(): Promise<void> {
    const { economy, queues, leaseMs } = this.#options;
    const candidates = await economy.candidates();
    if (candidates.length === 0) return;
    if (!(await this.#holdsSubmitLease(queues, leaseMs))) return;
    for (const candidate of candidates) {
      if (this.#stopped) return;
      await this.#submitter.submitBatch(candidate.batchId, candidate.userId);
    }
  }

  /**
   * The submit lease, held by this instance (taken or renewed for `ttlMs`). Renewed at
   * half its time, so a pass near the end of it cannot outlive it.
   */
  async #holdsSubmitLease(queues: ResolvedEconomyOptions["queues"], ttlMs: number): Promise<boolean> {
    if (Date.now() < this.#submitLeaseUntil) return true;
    const start = Date.now();
    if (!(await queues.holdLease(SUBMIT_LEASE, this.#holder, ttlMs))) return false;
    this.#submitLeaseUntil = start + ttlMs / 2;
    return true;
  }

  async #pollPass(): Promise<void> {
    const { economy, logger, leaseMs } = this.#options;
    // Bounded: a provider batch whose cancel keeps failing stays due, and must not hold the pass.
    for (let round = 0; round < MAX_POLL_ROUNDS; round++) {
      if (this.#stopped) return;
      const due = await economy.leaseDue(POLLS_PER_PASS, leaseMs);
      for (const leased of due) {
        try {
          await this.#collector.poll(leased);
        } catch (error) {
          logger.warn(
            { err: error, providerBatch: leased.id, provider: leased.provider },
            "could not poll a provider batch; will try again",
          );
          await economy.scheduleNextPoll(
            leased.id,
            this.#collector.backoff(leased.polls),
            leased.status === "canceling" ? "canceling" : "running",
          );
        }
      }
      if (due.length < POLLS_PER_PASS) return;
    }
  }
}
