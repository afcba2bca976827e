import { z } from "zod";
import { describeProviderOptionIssue, providerOptionIssues } from "./provider-options.ts";

/** One chat message of a text job. */
export const ChatMessage = z
  .object({
    role: z.enum(["system", "user", "assistant"]),
    content: z.string().min(1, "message content must not be empty").max(1_000_000),
  })
  .strict();
export type ChatMessage = z.infer<typeof ChatMessage>;

/**
 * What a text job asks for: either `messages` or a single `prompt`, with optional
 * sampling parameters. Provider-specific settings go in `providerOptions`, keyed by
 * provider name; only options that cannot multiply or reprice a call are accepted
 * (see {@link ALLOWED_PROVIDER_OPTIONS}).
 */
export const TextJobInput = z
  .object({
    messages: z.array(ChatMessage).min(1).max(1_000).optional(),
    prompt: z.string().min(1, "prompt must not be empty").max(1_000_000).optional(),
    system: z.string().min(1).max(1_000_000).optional(),
    maxTokens: z.number().int().min(1).max(1_000_000).optional(),
    temperature: z.number().min(0).max(2).optional(),
    topP: z.number().gt(0).max(1).optional(),
    stop: z.array(z.string().min(1).max(256)).min(1).max(4).optional(),
    providerOptions: z.record(z.string(), z.record(z.string(), z.unknown())).optional(),
    /**
     * Stream the text as it is generated: the worker publishes `job.delta` events on
     * `GET /v1/jobs/:id/events` (coalesced, about one per 50 ms) and still stores the
     * full text as the result. A `job.retrying` after deltas means the partial text
     * is void: the next attempt starts over. Default false.
     */
    stream: z.boolean().optional(),
    /**
     * The result cache: `true` serves an identical earlier request's result (and
     * caches this one's), `false` always calls the provider. Default: cached when
     * `temperature` is 0, the one setting that asks for a deterministic answer.
     * A hit is marked `cached: true` in the result, costs nothing and is charged nothing.
     */
    cache: z.boolean().optional(),
  })
  .strict()
  .superRefine((input, context) => {
    if ((input.messages === undefined) === (input.prompt === undefined)) {
      context.addIssue({
        code: "custom",
        path: input.messages === undefined ? ["prompt"] : ["messages"],
        message: "give exactly one of `messages` or `prompt`",
      });
    }
    for (const issue of providerOptionIssues(input.providerOptions, "text")) {
      context.addIssue({
        code: "custom",
        path: ["providerOptions", ...issue.path],
        message: describeProviderOptionIssue(issue),
      });
    }
  })
  .meta({
    id: "TextJobInput",
    description: "What a text job asks for: exactly one of `prompt` or `messages`",
    examples: [{ prompt: "Write a haiku about queues", maxTokens: 200 }],
  });
export type TextJobInput = z.infer<typeof TextJobInput>;

/** Why generation stopped, normalized across providers. */
export const FinishReason = z.enum(["stop", "length", "content_filter", "tool_calls", "error", "other"]);
export type FinishReason = z.infer<typeof FinishReason>;

/** Token counts, normalized across providers. */
export const TokenUsage = z.object({
  inputTokens: z.number().int().nonnegative(),
  outputTokens: z.number().int().nonnegative(),
  cachedInputTokens: z.number().int().nonnegative().optional(),
  reasoningTokens: z.number().int().nonnegative().optional(),
});
export type TokenUsage = z.infer<typeof TokenUsage>;

/** The stored result of a completed text job. */
export const TextJobResult = z.object({
  text: z.string(),
  finishReason: FinishReason,
  provider: z.string(),
  model: z.string(),
  providerRequestId: z.string().optional(),
  /** Served from the result cache: no provider was called. */
  cached: z.boolean().optional(),
  /** The job whose provider call produced a cached result. */
  cachedFrom: z.string().optional(),
  /** `economy`: answered through the provider's batch API, at its batch price. */
  tier: z.enum(["online", "economy"]).optional(),
});
export type TextJobResult = z.infer<typeof TextJobResult>;

/** The messages a text job sends, with `prompt` and `system` folded in. */
export function toChatMessages(input: TextJobInput): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (input.system !== undefined) messages.push({ role: "system", content: input.system });
  if (input.messages !== undefined) messages.push(...input.messages);
  if (input.prompt !== undefined) messages.push({ role: "user", content: input.prompt });
  return messages;
}
