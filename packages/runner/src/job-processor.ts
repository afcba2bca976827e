import {
  GenqError,
  ImageJobInput,
  isErrorCode,
  QueuedJobPayload,
  type StoredImage,
  TextJobInput,
  toChatMessages,
  toPublicFailure,
} from "@genq/core";
import { type JobCompletion, type JobRecord, type JobRepository, uploadObjectKey } from "@genq/db";
import { DeltaBuffer, type EventPublisher } from "@genq/events";
import type { JobLifecycle } from "@genq/lifecycle";
import type { GenqMetrics } from "@genq/metrics";
import {
  BYO_KEY_ID,
  detectImageMediaType,
  maxInputTokens,
  type ProviderRouter,
  type ResultCache,
  type RouteCallOptions,
  RouteDelayedError,
  type RoutedCall,
  RouteFailedError,
  resolveTargets,
  type UserKeyClient,
} from "@genq/providers";
import { chargedTextTokens, type QuotaLedger } from "@genq/quota";
import { extractTraceContext, inSpan, SpanKind } from "@genq/telemetry";
import { DelayedError, type Job, UnrecoverableError } from "bullmq";
import type { Logger } from "pino";
import type { TenantGate } from "./tenant-gate.ts";
import { textReservation } from "./text-reservation.ts";

/** How long a job waits when its row cannot be claimed (Postgres unreachable). */
const CLAIM_RETRY_DELAY_MS = 5_000;

/** What one attempt ended with, as BullMQ stores it (small: the result lives in Postgres). */
export interface AttemptOutcome {
  status: "completed" | "canceled" | "skipped";
}

/** Where an image job's images go: object storage plus one asset row per image. */
export interface JobImageStore {
  storeJobImages(input: {
    jobId: string;
    userId: string;
    images: Array<{ bytes: Uint8Array; mediaType: string; revisedPrompt?: string }>;
  }): Promise<StoredImage[]>;
  /** The bytes of an upload (the source or mask of an edit or variation), by object key. */
  readUpload(key: string): Promise<Uint8Array>;
}

/** Dependencies of {@link createJobProcessor}. */
export interface JobProcessorOptions {
  jobs: JobRepository;
  lifecycle: JobLifecycle;
  router: ProviderRouter;
  logger: Logger;
  /**
   * Charges jobs against their user's plan: a reservation of the worst case before
   * the provider call, settled in the transaction that completes the job, released
   * when it fails or is canceled. Without it, jobs are not metered against quotas.
   */
  quota?: QuotaLedger;
  /** Provider call figures (count, latency, tokens, cost) for /metrics. */
  metrics?: GenqMetrics;
  /**
   * Users' own provider keys: a job whose candidate provider has one runs on it
   * (usage and cost recorded; the system quota is not charged for it).
   */
  userKeys?: { openForJob(userId: string, provider: string): Promise<string | undefined> };
  /** Stores the images of image jobs; without it, image jobs fail with a clear error. */
  images?: JobImageStore;
  /** Per-attempt deadline for the provider call. */
  attemptTimeoutMs: number;
  /**
   * Live events (`GET /v1/jobs/:id/events`): `job.started`, `job.retrying`,
   * `job.delayed` and, for text jobs with `stream: true`, `job.delta`. Terminal
   * events come from the repository's finished-job hooks. Without it, nothing is
   * published and streamed text jobs run like the others.
   */
  events?: Pick<EventPublisher, "publishJobEvent">;
  /**
   * Results of deterministic text requests (`temperature: 0` or `cache: true`),
   * shared by all workers, scoped to the requesting user unless the cache is shared. A hit completes the job without a provider call, at no
   * cost and without a quota charge.
   */
  resultCache?: ResultCache;
  /**
   * Per-tenant in-flight caps: a job whose owner already runs its cap is parked
   * instead of claimed, and woken when one of the owner's jobs stops running.
   * Without it, a tenant may take every worker slot.
   */
  tenantGate?: TenantGate;
  /**
   * How long a job may keep waiting for its providers (every candidate rate limited
   * or behind an open circuit), from its first postponement; past it the job fails
   * `provider_unavailable` instead of waiting again. Default 30 minutes.
   */
  postponeDeadlineMs?: number;
}

/** Default of {@link JobProcessorOptions.postponeDeadlineMs}. */
export const DEFAULT_POSTPONE_DEADLINE_MS = 30 * 60_000;

/**
 * Creates the BullMQ processor that runs one attempt of a genq job: claim the row,
 * call the provider, and record the outcome in Postgres. Effects are keyed by job
 * id, so a retried, stalled or duplicated delivery never completes a job twice.
 */
export function createJobProcessor(options: JobProcessorOptions) {
  const { jobs, lifecycle, logger } = options;
  const postponeDeadlineMs = options.postponeDeadlineMs ?? DEFAULT_POSTPONE_DEADLINE_MS;

  return async function processJob(
    job: Job<QueuedJobPayload>,
    token?: string,
    cancelSignal?: AbortSignal,
  ): Promise<AttemptOutcome> {
    const payload = QueuedJobPayload.safeParse(job.data);
    if (!payload.success) throw new UnrecoverableError(`malformed queue payload for BullMQ job ${job.id}`);
    return inSpan(
      "genq.job.run",
      {
        kind: SpanKind.CONSUMER,
        parent: extractTraceContext(payload.data.trace),
        attributes: {
          "genq.job.id": payload.data.jobId,
          "genq.queue": job.queueName,
          "genq.delivery": job.attemptsMade + 1,
        },
      },
      () => runDelivery(job, payload.data.jobId, token, cancelSignal),
    );
  };

  /** One delivery of a job: claim, run the attempt, record what happened. */
  async function runDelivery(
    job: Job<QueuedJobPayload>,
    jobId: string,
    token: string | undefined,
    cancelSignal: AbortSignal | undefined,
  ): Promise<AttemptOutcome> {
    const log = logger.child({ jobId, queue: job.queueName, attempt: job.attemptsMade + 1 });
    let claim: Awaited<ReturnType<JobLifecycle["claim"]>>;
    try {
      claim = await lifecycle.claim(jobId, options.tenantGate?.limits);
    } catch (error) {
      // Postgres is unreachable: nothing ran, so postpone without spending an attempt.
      log.warn({ err: error }, "could not claim the job; postponing it");
      if (token === undefined) throw error;
      await job.moveToDelayed(Date.now() + CLAIM_RETRY_DELAY_MS, token);
      throw new DelayedError();
    }
    if (claim.outcome === "tenant_busy" && options.tenantGate !== undefined && token !== undefined) {
      // Its owner already runs its cap of jobs: set it aside until one of them stops.
      await options.tenantGate.park(job, claim.userId, token);
      log.debug({ running: claim.running, cap: claim.cap }, "tenant at its in-flight cap; job parked");
      throw new DelayedError();
    }
    if (claim.outcome === "user_disabled") {
      await releaseQuota(options, jobId, log);
      log.info("job canceled: its user is disabled");
      return { status: "canceled" };
    }
    if (claim.outcome !== "claimed") return skip(options, jobId, log);
    const record = claim.job;
    try {
      return await runClaimed(job, record, token, cancelSignal, log);
    } finally {
      // The owner has one job less running: let a parked one of theirs go.
      await options.tenantGate?.wake(record.userId);
    }
  }

  /** The claimed attempt of a delivery: run it, record what happened. */
  async function runClaimed(
    job: Job<QueuedJobPayload>,
    record: JobRecord,
    token: string | undefined,
    cancelSignal: AbortSignal | undefined,
    log: Logger,
  ): Promise<AttemptOutcome> {
    const jobId = record.id;
    log.info({ type: record.type, priority: record.priority }, "job started");
    await options.events?.publishJobEvent(jobId, "job.started", {
      id: jobId,
      object: "job",
      status: "active",
      attempt: record.attempts,
    });

    const timeout = AbortSignal.timeout(options.attemptTimeoutMs);
    const signal = cancelSignal === undefined ? timeout : AbortSignal.any([cancelSignal, timeout]);
    try {
      const outcome = await runAttempt(options, record, record.attempts, signal, log);
      log.info({ outcome: outcome.status }, "job finished");
      return outcome;
    } catch (caught) {
      // A delayed route that called a provider and saw it fail spent a real attempt.
      const error = caught instanceof RouteDelayedError ? (asRealFailure(caught) ?? caught) : caught;
      const calls =
        error instanceof RouteFailedError || error instanceof RouteDelayedError ? error.calls : [];
      if (cancelSignal?.aborted && (await lifecycle.cancelIfRequested(jobId, calls, record.attempts))) {
        await releaseQuota(options, jobId, log);
        log.info("job canceled while running");
        return { status: "canceled" };
      }
      const postponement = error instanceof RouteDelayedError ? asPostponement(error, record) : undefined;
      if (postponement !== undefined && token !== undefined) {
        // Every candidate is limited for a while and none was called: wait in BullMQ's
        // delayed set, spending no attempt; but not past the postponement deadline.
        if (!(await lifecycle.postpone(jobId, calls, record.attempts, postponement.since))) {
          if (!(await lifecycle.cancelIfRequested(jobId))) return { status: "skipped" };
          await releaseQuota(options, jobId, log);
          return { status: "canceled" };
        }
        if (postponement.waitedMs + postponement.delayMs > postponeDeadlineMs) {
          // Counted as a postponement above (no provider was called: not an attempt), then failed.
          const failure = new GenqError(
            "provider_unavailable",
            `no provider could take the job within ${Math.round(postponeDeadlineMs / 1_000)} s ` +
              "(every candidate rate limited or unavailable); giving up",
          );
          if (await lifecycle.fail(jobId, failure, undefined, record.attempts))
            await releaseQuota(options, jobId, log);
          log.warn({ postponements: record.postponements + 1 }, `job failed: ${failure.message}`);
          throw new UnrecoverableError(`${failure.code}: ${failure.message}`);
        }
        log.info({ delayMs: postponement.delayMs }, "every provider candidate is limited; job delayed");
        await options.events?.publishJobEvent(jobId, "job.delayed", {
          id: jobId,
          object: "job",
          status: "queued",
          attempt: record.attempts,
          delayMs: postponement.delayMs,
        });
        await job.moveToDelayed(Date.now() + postponement.delayMs, token);
        throw new DelayedError();
      }
      const failure = classify(error, timeout.aborted, options.attemptTimeoutMs);
      if (failure.code === "internal_error") log.error({ err: error }, "attempt failed unexpectedly");
      // Users see the code and its generic message (job, batch results, webhooks, SSE all read
      // the row); the provider's text stays in the call log and this log.
      const shown = toPublicFailure(failure);
      const attempts = job.opts.attempts ?? 1;
      const finalAttempt = !failure.retryable || job.attemptsMade + 1 >= attempts;
      if (finalAttempt) {
        // Refused when another delivery claimed the job since: that one's hold is not ours to release.
        if (await lifecycle.fail(jobId, shown, calls, record.attempts))
          await releaseQuota(options, jobId, log);
        log.warn({ code: failure.code, retryable: failure.retryable }, `job failed: ${failure.message}`);
        // UnrecoverableError tells BullMQ not to spend the remaining attempts.
        throw failure.retryable ? failure : new UnrecoverableError(`${failure.code}: ${failure.message}`);
      }
      if (!(await lifecycle.retry(jobId, shown, calls, record.attempts))) {
        // Canceled meanwhile (the cancel released the hold), or another delivery owns the job now.
        if ((await jobs.find(jobId))?.status !== "canceled") return { status: "skipped" };
        await releaseQuota(options, jobId, log);
        log.info("job canceled after a failed attempt; not retrying");
        return { status: "canceled" };
      }
      log.info({ code: failure.code }, `attempt failed, will retry: ${failure.message}`);
      // Tells a live client that text streamed by this attempt is void: the next one starts over.
      await options.events?.publishJobEvent(jobId, "job.retrying", {
        id: jobId,
        object: "job",
        status: "queued",
        attempt: record.attempts,
        error: shown,
      });
      throw failure;
    }
  }
}

async function runAttempt(
  options: JobProcessorOptions,
  record: JobRecord,
  attempt: number,
  signal: AbortSignal,
  log: Logger,
): Promise<AttemptOutcome> {
  const selection = {
    ...(record.provider === null ? {} : { provider: record.provider }),
    ...(record.model === null ? {} : { model: record.model }),
  };
  const completion =
    record.type === "image"
      ? await runImage(options, record, selection, signal)
      : await runText(options, record, selection, signal);
  const { quota } = options;
  observeCalls(options.metrics, completion.calls ?? []);
  if (completion.costMicroUsd > 0) {
    options.metrics?.providerCost.inc(
      { provider: completion.provider, model: completion.model },
      completion.costMicroUsd,
    );
  }
  const completed = await options.lifecycle.complete({
    jobId: record.id,
    attempt,
    ...completion,
    // The charge is settled in the statement that completes the job: exactly once. On the
    // user's own key the system quota is not charged (usage and cost still are), and a
    // cached result is charged nothing (nothing was reserved for it either).
    ...(quota === undefined
      ? {}
      : {
          charge:
            completion.keyId === BYO_KEY_ID || completion.cacheHit === true
              ? ("release" as const)
              : {
                  textTokens: record.type === "text" ? chargedTextTokens(completion.usage) : 0,
                  images: completion.usage.images ?? 0,
                  costMicroUsd: completion.costMicroUsd,
                },
        }),
  });
  if (completed) return { status: "completed" };
  // A cancel arrived while the provider was working: honour it now (a safe point).
  // Otherwise another delivery owns the job now (e.g. after a stall); leave it alone.
  if (!(await options.lifecycle.cancelIfRequested(record.id))) return { status: "skipped" };
  await releaseQuota(options, record.id, log);
  return { status: "canceled" };
}

type Selection = { provider?: string; model?: string };
type Completion = Omit<JobCompletion, "jobId" | "attempt"> & {
  /** Served from the result cache: no provider call, no charge. */
  cacheHit?: boolean;
};

function parseInput<T>(
  schema: {
    safeParse(
      value: unknown,
    ): { success: true; data: T } | { success: false; error: { issues: Array<{ message: string }> } };
  },
  value: unknown,
): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new GenqError(
      "invalid_request",
      `stored input is invalid: ${parsed.error.issues[0]?.message ?? "unknown"}`,
    );
  }
  return parsed.data;
}

async function runText(
  options: JobProcessorOptions,
  record: JobRecord,
  selection: Selection,
  signal: AbortSignal,
): Promise<Completion> {
  const input = parseInput(TextJobInput, record.input);
  const messages = toChatMessages(input);
  const parameters = {
    ...(input.maxTokens === undefined ? {} : { maxTokens: input.maxTokens }),
    ...(input.temperature === undefined ? {} : { temperature: input.temperature }),
    ...(input.topP === undefined ? {} : { topP: input.topP }),
    ...(input.stop === undefined ? {} : { stop: input.stop }),
    ...(input.providerOptions === undefined ? {} : { providerOptions: input.providerOptions }),
  };
  const cacheKey =
    options.resultCache !== undefined && (input.cache ?? input.temperature === 0)
      ? options.resultCache.textKey({
          userId: record.userId,
          provider: selection.provider ?? "",
          model: selection.model ?? "",
          messages,
          parameters,
        })
      : undefined;
  if (cacheKey !== undefined) {
    const hit = await options.resultCache?.getText(cacheKey);
    options.metrics?.resultCache.inc({ outcome: hit === undefined ? "miss" : "hit" });
    if (hit !== undefined) {
      if (input.stream === true)
        await options.events?.publishJobEvent(record.id, "job.delta", {
          id: record.id,
          attempt: record.attempts,
          delta: hit.text,
        });
      return {
        provider: hit.provider,
        model: hit.model,
        usage: { inputTokens: 0, outputTokens: 0 },
        costMicroUsd: 0,
        calls: [],
        cacheHit: true,
        result: {
          text: hit.text,
          finishReason: hit.finishReason,
          provider: hit.provider,
          model: hit.model,
          cached: true,
          // A job id is shown only to its owner (a shared cache can serve another user's answer).
          ...(hit.sourceUserId === record.userId ? { cachedFrom: hit.sourceJobId } : {}),
        },
      };
    }
  }
  // The worst case, and the output cap every call sends: no call can use more than is held.
  const reservation = textReservation(options.router.config(), selection, messages, input.maxTokens);
  const userKeys = await userKeyClients(options, record, selection, "text");
  if (!userKeys.coversAll)
    await options.quota?.reserve({
      jobId: record.id,
      userId: record.userId,
      textTokens: reservation.textTokens,
      costMicroUsd: options.router.estimateMaxCostMicroUsd(selection, {
        inputTokens: reservation.inputTokens,
        outputTokens: reservation.outputTokens,
        images: 0,
      }),
    });
  const request = { messages, ...parameters, maxTokens: reservation.outputTokens };
  const callOptions = { signal, clientFor: userKeys.clientFor };
  const { events } = options;
  const routed = await inSpan("genq.provider.call", { kind: SpanKind.CLIENT }, async (span) => {
    const result =
      input.stream === true && events !== undefined
        ? await streamText(options.router, events, record, selection, request, callOptions)
        : await options.router.generateText(selection, request, callOptions);
    span.setAttributes(callAttributes(result));
    return result;
  });
  const { output } = routed;
  // Only a finished answer is worth serving again.
  if (cacheKey !== undefined && output.finishReason === "stop") {
    await options.resultCache?.setText(cacheKey, {
      text: output.text,
      finishReason: output.finishReason,
      provider: routed.provider,
      model: routed.model,
      sourceJobId: record.id,
      sourceUserId: record.userId,
      cachedAt: new Date().toISOString(),
    });
  }
  return {
    provider: routed.provider,
    model: routed.model,
    keyId: routed.keyId,
    usage: output.usage,
    costMicroUsd: routed.costMicroUsd,
    priceVersion: routed.priceVersion,
    calls: routed.calls,
    result: {
      text: output.text,
      finishReason: output.finishReason,
      provider: routed.provider,
      model: routed.model,
      ...(output.providerRequestId === undefined ? {} : { providerRequestId: output.providerRequestId }),
    },
  };
}

/**
 * Runs a text call as a stream, publishing its deltas coalesced (one `job.delta` per
 * ~50 ms). Every delta is published before this returns, so the terminal event,
 * published after the completing transaction, comes after them in the job's stream.
 */
async function streamText(
  router: ProviderRouter,
  events: NonNullable<JobProcessorOptions["events"]>,
  record: JobRecord,
  selection: Selection,
  request: Parameters<ProviderRouter["generateText"]>[1],
  callOptions: RouteCallOptions & { signal: AbortSignal },
) {
  const buffer = new DeltaBuffer({
    flush: (delta) =>
      events.publishJobEvent(record.id, "job.delta", { id: record.id, attempt: record.attempts, delta }),
  });
  try {
    return await router.streamText(selection, request, {
      ...callOptions,
      onDelta: (delta) => buffer.push(delta),
    });
  } catch (error) {
    // The caller publishes `job.retrying` (or the job fails) after the deltas already out.
    buffer.discard();
    throw error;
  } finally {
    await buffer.drain();
  }
}

async function runImage(
  options: JobProcessorOptions,
  record: JobRecord,
  selection: Selection,
  signal: AbortSignal,
): Promise<Completion> {
  const { images } = options;
  if (images === undefined) {
    throw new GenqError("invalid_request", "this worker has no object storage configured for image jobs");
  }
  const input = parseInput(ImageJobInput, record.input);
  const userKeys = await userKeyClients(options, record, selection, "image");
  if (!userKeys.coversAll)
    await options.quota?.reserve({
      jobId: record.id,
      userId: record.userId,
      images: input.n,
      costMicroUsd: options.router.estimateMaxCostMicroUsd(selection, {
        inputTokens: maxInputTokens([{ content: input.prompt ?? "" }]),
        outputTokens: 0,
        images: input.n,
        image: {
          ...(input.size === undefined ? {} : { size: input.size }),
          ...(input.quality === undefined ? {} : { quality: input.quality }),
        },
      }),
    });
  const routed = await inSpan("genq.provider.call", { kind: SpanKind.CLIENT }, async (span) => {
    const result = await routeImage(options.router, images, record, input, selection, {
      signal,
      clientFor: userKeys.clientFor,
    });
    span.setAttributes(callAttributes(result));
    return result;
  });
  const { output } = routed;
  // Keys are derived from the job id and image index: a retried job overwrites, never orphans.
  const stored = await inSpan(
    "genq.storage.upload",
    { kind: SpanKind.CLIENT, attributes: { "genq.images": output.images.length } },
    () => images.storeJobImages({ jobId: record.id, userId: record.userId, images: output.images }),
  );
  return {
    provider: routed.provider,
    model: routed.model,
    keyId: routed.keyId,
    usage: {
      inputTokens: output.usage.inputTokens ?? 0,
      outputTokens: output.usage.outputTokens ?? 0,
      images: output.usage.images,
    },
    costMicroUsd: routed.costMicroUsd,
    priceVersion: routed.priceVersion,
    calls: routed.calls,
    result: {
      images: stored,
      provider: routed.provider,
      model: routed.model,
      ...(output.providerRequestId === undefined ? {} : { providerRequestId: output.providerRequestId }),
    },
  };
}

/** Calls the router method of the job's operation, with the uploads it names read from storage. */
async function routeImage(
  router: ProviderRouter,
  images: JobImageStore,
  record: JobRecord,
  input: ImageJobInput,
  selection: Selection,
  callOptions: RouteCallOptions & { signal: AbortSignal },
) {
  const common = {
    n: input.n,
    ...(input.size === undefined ? {} : { size: input.size }),
    ...(input.providerOptions === undefined ? {} : { providerOptions: input.providerOptions }),
  };
  const quality = input.quality === undefined ? {} : { quality: input.quality };
  const readSource = async (uploadId: string) => {
    const bytes = await images.readUpload(uploadObjectKey(record.userId, uploadId));
    return { bytes, mediaType: detectImageMediaType(bytes) ?? "image/png" };
  };
  if (input.operation === "generate" || input.image === undefined) {
    return router.generateImage(
      selection,
      { prompt: input.prompt ?? "", ...common, ...quality },
      callOptions,
    );
  }
  const image = await readSource(input.image);
  if (input.operation === "variation") {
    return router.createImageVariation(selection, { image, ...common }, callOptions);
  }
  const mask = input.mask === undefined ? {} : { mask: await readSource(input.mask) };
  return router.editImage(
    selection,
    { prompt: input.prompt ?? "", image, ...mask, ...common, ...quality },
    callOptions,
  );
}

function observeCalls(metrics: GenqMetrics | undefined, calls: readonly RoutedCall[]): void {
  if (metrics === undefined) return;
  for (const call of calls) {
    const labels = { provider: call.provider, model: call.model };
    metrics.providerCalls.inc({
      ...labels,
      outcome: call.outcome === "ok" ? "ok" : (call.errorCode ?? call.outcome),
    });
    if (call.outcome === "skipped") continue;
    metrics.providerLatency.observe(labels, call.latencyMs / 1_000);
    if (call.inputTokens) metrics.providerTokens.inc({ ...labels, direction: "input" }, call.inputTokens);
    if (call.outputTokens) metrics.providerTokens.inc({ ...labels, direction: "output" }, call.outputTokens);
  }
}

/**
 * Clients on the user's own keys for the providers the job may be routed to, on
 * providers that accept user keys only (elsewhere a stored key is ignored and the
 * job runs, and is charged, on the system's keys). `coversAll`: every candidate
 * has one, so the job cannot touch a system key and reserves nothing against the
 * system quota.
 */
async function userKeyClients(
  options: JobProcessorOptions,
  record: JobRecord,
  selection: Selection,
  capability: "text" | "image",
): Promise<{ clientFor: RouteCallOptions["clientFor"]; coversAll: boolean }> {
  const none = { clientFor: undefined, coversAll: false };
  if (options.userKeys === undefined) return none;
  const config = options.router.config();
  let providers: string[];
  try {
    const plan = resolveTargets(config, { ...selection, capability });
    providers = [...new Set(plan.tiers.flat().map((target) => target.provider))];
  } catch {
    return none; // not routable: the router call itself fails with the reason
  }
  const clients = new Map<string, UserKeyClient>();
  for (const provider of providers) {
    const deployment = config.providers.get(provider);
    if (deployment?.acceptsUserKeys !== true || deployment.clientForKey === undefined) continue;
    const apiKey = await options.userKeys.openForJob(record.userId, provider);
    if (apiKey === undefined) continue;
    clients.set(provider, { client: deployment.clientForKey(apiKey), ownerId: record.userId });
  }
  if (clients.size === 0) return none;
  return { clientFor: (provider) => clients.get(provider), coversAll: clients.size === providers.length };
}

async function releaseQuota(options: JobProcessorOptions, jobId: string, log: Logger): Promise<void> {
  // If this fails, the reclaimer releases it later: the job is finished, its hold is not needed.
  await options.quota?.release(jobId).catch((error: unknown) => {
    log.warn({ err: error }, "could not release the job's quota reservation; the reclaimer will");
  });
}

async function skip(options: JobProcessorOptions, jobId: string, log: Logger): Promise<AttemptOutcome> {
  const { jobs, lifecycle } = options;
  if (await lifecycle.cancelIfRequested(jobId)) {
    // An earlier attempt may hold a reservation (a retry, a postponement, a crashed worker).
    await releaseQuota(options, jobId, log);
    log.info("job canceled before it ran");
    return { status: "canceled" };
  }
  const current = await jobs.find(jobId);
  log.info({ status: current?.status ?? "missing" }, "job skipped: nothing left to run");
  return { status: "skipped" };
}

/**
 * A delayed route whose run called a provider and saw it fail as unavailable or time
 * out (a half-open probe, the failure that opened the circuit) as a failed attempt, or
 * undefined when it saw no such failure. Such a run fails (and retries after the delay)
 * like any other, so a provider that keeps failing spends the job's attempts instead of
 * postponing the job forever.
 */
function asRealFailure(error: RouteDelayedError): RouteFailedError | undefined {
  // Only failures of the provider itself (those that count toward its circuit): a refused
  // key or a rate limit on one key says nothing about the job or the provider's health.
  const failed = error.calls.findLast(
    (call) =>
      call.outcome === "error" && (call.errorCode === "provider_unavailable" || call.errorCode === "timeout"),
  );
  if (failed === undefined) return undefined;
  const code = failed.errorCode !== undefined && isErrorCode(failed.errorCode) ? failed.errorCode : undefined;
  const failure = new GenqError(
    code ?? "provider_unavailable",
    failed.errorMessage ?? "the provider call failed",
    {
      retryable: true,
      cause: error,
    },
  );
  // The retry waits until a candidate may take calls again (the queue's backoff reads this).
  return Object.assign(new RouteFailedError(failure, error.calls), { retryAfterMs: error.delayMs });
}

/** How long the job has waited for providers, and the delay it asks for now. */
function asPostponement(
  error: RouteDelayedError,
  record: JobRecord,
): { delayMs: number; since: Date; waitedMs: number } {
  const now = Date.now();
  const since = record.postponedSince ?? new Date(now);
  return { delayMs: error.delayMs, since, waitedMs: now - since.getTime() };
}

/**
 * Any failure as a GenqError; unknown errors (bugs, lost connections) are retryable.
 * Their text stays in the logs: it can hold internals that users must not see.
 */
function classify(error: unknown, timedOut: boolean, timeoutMs: number): GenqError {
  if (timedOut) {
    return new GenqError("timeout", `the attempt did not finish within ${timeoutMs} ms`, { retryable: true });
  }
  if (GenqError.is(error)) return error;
  return new GenqError(
    "internal_error",
    "the worker hit an internal error running this job (see worker logs)",
    {
      retryable: true,
      cause: error,
    },
  );
}

/** Span attributes of a routed call: who answered, after how many calls. */
function callAttributes(routed: { provider: string; model: string; calls: readonly unknown[] }) {
  return {
    "genq.provider": routed.provider,
    "genq.model": routed.model,
    "genq.provider.calls": routed.calls.length,
  };
}
