import { z } from "zod";

/** The adapter family of a configured provider (the `type` of its entry in the providers file). */
export const ProviderKind = z.enum(["openai", "openai-compatible", "anthropic", "gemini", "mock"]);
export type ProviderKind = z.infer<typeof ProviderKind>;

/** What a job asks a provider for; each has its own allow-list. */
export type ProviderCapability = "text" | "image";

/** An allowed option and the values it may take. */
type OptionSchemas = Readonly<Record<string, z.ZodType>>;

const Penalty = z.number().min(-2).max(2);
const Identifier = z.string().max(256);

/** OpenAI Chat Completions options (OpenAI and OpenAI-compatible servers). */
const OPENAI_TEXT: OptionSchemas = {
  seed: z.int(),
  frequency_penalty: Penalty,
  presence_penalty: Penalty,
  logit_bias: z.record(z.string().regex(/^\d{1,7}$/), z.number().min(-100).max(100)),
  // Reasoning tokens are output tokens: `max_completion_tokens` caps them with the rest.
  reasoning_effort: z.enum(["none", "minimal", "low", "medium", "high"]),
  verbosity: z.enum(["low", "medium", "high"]),
  // Not `json_schema`: the schema is added to the prompt, input the reservation never saw.
  response_format: z.strictObject({ type: z.enum(["text", "json_object"]) }),
  user: Identifier,
  safety_identifier: Identifier,
  /** The adapter's own switch (which field carries the output cap); never sent. */
  useMaxCompletionTokens: z.boolean(),
};

/** OpenAI Images options that change neither the count, the size nor the quality priced. */
const OPENAI_IMAGE: OptionSchemas = {
  background: z.enum(["transparent", "opaque", "auto"]),
  moderation: z.enum(["low", "auto"]),
  output_format: z.enum(["png", "jpeg", "webp"]),
  output_compression: z.int().min(0).max(100),
  style: z.enum(["vivid", "natural"]),
  user: Identifier,
};

/** Anthropic Messages options. */
const ANTHROPIC_TEXT: OptionSchemas = {
  top_k: z.int().min(0),
  metadata: z.strictObject({ user_id: Identifier.optional() }),
  // Thinking tokens are output tokens, inside `max_tokens`.
  thinking: z.strictObject({
    type: z.enum(["enabled", "disabled", "adaptive"]),
    budget_tokens: z.int().min(0).optional(),
  }),
};

const SafetySettings = z
  .array(
    z.strictObject({
      category: z.string().max(64),
      threshold: z.string().max(64),
      method: z.string().max(64).optional(),
    }),
  )
  .max(32);

/** Gemini `GenerateContentConfig` options. */
const GEMINI_TEXT: OptionSchemas = {
  topK: z.number().min(0),
  seed: z.int(),
  presencePenalty: Penalty,
  frequencyPenalty: Penalty,
  safetySettings: SafetySettings,
  responseMimeType: z.enum(["text/plain", "application/json"]),
  // Thoughts count against `maxOutputTokens`, like the answer.
  thinkingConfig: z.strictObject({
    thinkingBudget: z.int().min(-1).optional(),
    thinkingLevel: z.enum(["MINIMAL", "LOW", "MEDIUM", "HIGH"]).optional(),
    includeThoughts: z.boolean().optional(),
  }),
};

/** Gemini image options (not `imageConfig`: its `imageSize` reprices, and size comes from the job). */
const GEMINI_IMAGE: OptionSchemas = {
  seed: z.int(),
  safetySettings: SafetySettings,
};

/** The mock's per-request behaviour; the mock checks the values itself. */
const MOCK: OptionSchemas = {
  latencyMs: z.unknown(),
  fail: z.unknown(),
  failTimes: z.unknown(),
  retryAfterMs: z.unknown(),
  deltaDelayMs: z.unknown(),
  streamBreaks: z.unknown(),
};

/**
 * `providerOptions` a job may set, per provider kind and capability: options that
 * cannot multiply a call or change its price (seed, sampling, safety settings,
 * reasoning effort, which the output cap bounds). Everything else is refused,
 * because it is sent on the operator's key: `n`, `candidateCount`, any output
 * limit (`max_tokens`, `max_completion_tokens`, `maxOutputTokens`), `service_tier`,
 * `store`, tools and prompt caching, and image `n`/`quality`/`size`, which come from
 * the job's own fields only.
 */
export const ALLOWED_PROVIDER_OPTIONS: Readonly<
  Record<ProviderKind, Readonly<Record<ProviderCapability, OptionSchemas>>>
> = {
  openai: { text: OPENAI_TEXT, image: OPENAI_IMAGE },
  "openai-compatible": { text: OPENAI_TEXT, image: OPENAI_IMAGE },
  anthropic: { text: ANTHROPIC_TEXT, image: {} },
  gemini: { text: GEMINI_TEXT, image: GEMINI_IMAGE },
  mock: { text: MOCK, image: MOCK },
};

/** One refused option: where it is (`["openai", "n"]`) and why. */
export interface ProviderOptionIssue {
  path: [provider: string, option: string];
  /** Why, without the option's name: `not allowed (...); allowed options: seed, ...`. */
  reason: string;
}

/** An issue as one sentence naming the option: `input.providerOptions.openai.n is not allowed (...)`. */
export function describeProviderOptionIssue(issue: ProviderOptionIssue): string {
  return `input.providerOptions.${issue.path[0]}.${issue.path[1]} is ${issue.reason}`;
}

/**
 * The options of `providerOptions` that are not allowed, each with the reason.
 * `kindOf` says which kind a provider name is; for a name it cannot resolve
 * (undefined), an option passes when some kind allows it with that value: the
 * adapter, which knows its kind, checks again before anything is sent.
 */
export function providerOptionIssues(
  providerOptions: Record<string, Record<string, unknown>> | undefined,
  capability: ProviderCapability,
  kindOf: (provider: string) => ProviderKind | undefined = () => undefined,
): ProviderOptionIssue[] {
  const issues: ProviderOptionIssue[] = [];
  for (const [provider, options] of Object.entries(providerOptions ?? {})) {
    const kind = kindOf(provider);
    const kinds = kind === undefined ? ProviderKind.options : [kind];
    for (const [option, value] of Object.entries(options)) {
      const schemas = kinds.flatMap((candidate) => {
        const allowed = ALLOWED_PROVIDER_OPTIONS[candidate][capability];
        const schema = Object.hasOwn(allowed, option) ? allowed[option] : undefined;
        return schema === undefined ? [] : [schema];
      });
      if (schemas.length === 0) {
        const on = kind === undefined ? "" : ` on a provider of kind ${kind}`;
        issues.push({
          path: [provider, option],
          reason: `not allowed in ${capability} jobs${on} (only options that cannot multiply or reprice a call are); allowed options: ${allowedNames(kinds, capability)}`,
        });
      } else if (!schemas.some((schema) => schema.safeParse(value).success)) {
        const first = schemas[0]?.safeParse(value);
        const detail = first?.success === false ? first.error.issues[0]?.message : undefined;
        issues.push({
          path: [provider, option],
          reason: `not allowed with this value: ${detail ?? "invalid"}`,
        });
      }
    }
  }
  return issues;
}

function allowedNames(kinds: readonly ProviderKind[], capability: ProviderCapability): string {
  const names = [
    ...new Set(kinds.flatMap((kind) => Object.keys(ALLOWED_PROVIDER_OPTIONS[kind][capability]))),
  ];
  return names.length === 0 ? "none" : names.sort().join(", ");
}
