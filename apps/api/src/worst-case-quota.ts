import { type ImageJobInput, type TextJobInput, toChatMessages } from "@genq/core";
import { type JobPlan, planJob, type Routing } from "@genq/providers";

/** A job request as far as its plan depends on it (a single job's body, or a batch item with the batch's choice). */
export type PlannedRequest = { provider?: string | undefined; model?: string | undefined } & (
  | { type: "text"; input: TextJobInput }
  | { type: "image"; input: ImageJobInput }
);

/**
 * The plan of a job request ({@link planJob}): the same plan the worker makes from its
 * configuration, here from the published catalog (`routing`), or without one
 * (default output cap, no cost) when no worker has published it yet.
 */
export function planRequest(request: PlannedRequest, routing: Routing | undefined): JobPlan {
  const selection = { provider: request.provider, model: request.model };
  if (request.type === "image") {
    const { input } = request;
    return planJob(routing, {
      type: "image",
      selection,
      prompt: input.prompt,
      n: input.n,
      image: {
        ...(input.size === undefined ? {} : { size: input.size }),
        ...(input.quality === undefined ? {} : { quality: input.quality }),
      },
    });
  }
  return planJob(routing, {
    type: "text",
    selection,
    messages: toChatMessages(request.input),
    maxTokens: request.input.maxTokens,
  });
}

/**
 * The most one job (or batch item) can use of each quota kind, for the batch
 * submit-time check: its plan without routing (the input's byte bound plus
 * `maxTokens` or the default output cap for text, `n` for images).
 */
export function worstCaseQuota(
  request: { type: "text"; input: TextJobInput } | { type: "image"; input: ImageJobInput },
): { textTokens?: number; images?: number } {
  const plan = planRequest(request, undefined);
  return request.type === "image" ? { images: plan.images } : { textTokens: plan.textTokens };
}
