import { GenqError, ImageJobInput } from "@genq/core";
import { type JobRecord, uploadObjectKey } from "@genq/db";
import {
  detectImageMediaType,
  maxInputTokens,
  type ProviderRouter,
  type RouteCallOptions,
} from "@genq/providers";
import { inSpan, SpanKind } from "@genq/telemetry";
import { type AttemptOutput, callAttributes, parseStoredInput } from "./attempt-output.ts";
import type { JobImageStore, JobProcessorOptions } from "./job-processor-options.ts";
import { type Selection, selectionOf, userKeyClients } from "./user-key-clients.ts";

/**
 * Runs one attempt of an image job: reserve its worst case (unless the claim carries
 * the admission hold, `held`, or every candidate runs on the user's own key), call
 * the router method of its operation, and store the images it returned.
 */
export async function runImageAttempt(
  options: JobProcessorOptions,
  record: JobRecord,
  held: boolean,
  signal: AbortSignal,
): Promise<AttemptOutput> {
  const { images } = options;
  if (images === undefined) {
    throw new GenqError("invalid_request", "this worker has no object storage configured for image jobs");
  }
  const input = parseStoredInput(ImageJobInput, record.input);
  const selection = selectionOf(record);
  const userKeys = await userKeyClients(options, record, selection, "image");
  if (!held && !userKeys.coversAll)
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
