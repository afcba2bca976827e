import { type ChatMessage, TextJobInput, toChatMessages } from "@genq/core";
import type { JobRecord } from "@genq/db";
import { DeltaBuffer } from "@genq/events";
import type { CachedTextResult, ProviderRouter, RouteCallOptions } from "@genq/providers";
import { inSpan, SpanKind } from "@genq/telemetry";
import { type AttemptOutput, callAttributes, parseStoredInput } from "./attempt-output.ts";
import type { JobProcessorOptions } from "./job-processor-options.ts";
import { textReservation } from "./text-reservation.ts";
import { type Selection, selectionOf, userKeyClients } from "./user-key-clients.ts";

type TextRequest = Parameters<ProviderRouter["generateText"]>[1];

/**
 * Runs one attempt of a text job: a result-cache hit when the request is
 * deterministic, else the routed provider call (streamed when the job asked for it),
 * with the output cap its quota hold covers. `held`: the claim carries the hold taken
 * at admission, so nothing is reserved here.
 */
export async function runTextAttempt(
  options: JobProcessorOptions,
  record: JobRecord,
  held: boolean,
  signal: AbortSignal,
): Promise<AttemptOutput> {
  const input = parseStoredInput(TextJobInput, record.input);
  const selection = selectionOf(record);
  const messages = toChatMessages(input);
  const parameters = {
    ...(input.maxTokens === undefined ? {} : { maxTokens: input.maxTokens }),
    ...(input.temperature === undefined ? {} : { temperature: input.temperature }),
    ...(input.topP === undefined ? {} : { topP: input.topP }),
    ...(input.stop === undefined ? {} : { stop: input.stop }),
    ...(input.providerOptions === undefined ? {} : { providerOptions: input.providerOptions }),
  };
  const { resultCache } = options;
  const cacheKey =
    resultCache !== undefined && (input.cache ?? input.temperature === 0)
      ? resultCache.textKey({
          userId: record.userId,
          provider: selection.provider ?? "",
          model: selection.model ?? "",
          messages,
          parameters,
        })
      : undefined;
  if (resultCache !== undefined && cacheKey !== undefined) {
    const hit = await resultCache.getText(cacheKey);
    options.metrics?.resultCache.inc({ outcome: hit === undefined ? "miss" : "hit" });
    if (hit !== undefined) return servedFromCache(options, record, hit, input.stream === true);
  }
  const userKeys = await userKeyClients(options, record, selection, "text");
  const outputTokens = await holdTextJob(
    options,
    record,
    held,
    userKeys.coversAll,
    selection,
    messages,
    input,
  );
  const request: TextRequest = { messages, ...parameters, maxTokens: outputTokens };
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
  if (resultCache !== undefined && cacheKey !== undefined && output.finishReason === "stop") {
    await resultCache.setText(cacheKey, {
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
 * Makes sure the job's worst case is held against its user's plan, and returns the
 * output cap every call sends: no call can use more than is held. A hold taken at
 * admission fixed the cap (`reservedOutputTokens`); otherwise it is computed and
 * reserved here, unless every candidate runs on the user's own key.
 */
async function holdTextJob(
  options: JobProcessorOptions,
  record: JobRecord,
  held: boolean,
  coversAll: boolean,
  selection: Selection,
  messages: readonly ChatMessage[],
  input: TextJobInput,
): Promise<number> {
  if (held && record.reservedOutputTokens !== null) return record.reservedOutputTokens;
  const reservation = textReservation(options.router.config(), selection, messages, input.maxTokens);
  if (!held && !coversAll)
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
  return reservation.outputTokens;
}

/** A cache hit as the job's result: no provider call, no cost, no charge. */
async function servedFromCache(
  options: JobProcessorOptions,
  record: JobRecord,
  hit: CachedTextResult,
  stream: boolean,
): Promise<AttemptOutput> {
  if (stream)
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
  request: TextRequest,
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
    // The processor publishes `job.retrying` (or the job fails) after the deltas already out.
    buffer.discard();
    throw error;
  } finally {
    await buffer.drain();
  }
}
