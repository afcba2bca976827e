import { z } from "zod";
import { IMAGE_PRICE_KEY } from "../price-catalog.ts";
import type { BreakerPolicy, Capability, ImageOptions, RetryPolicy, RouteSpec } from "../router/types.ts";
import { MOCK_IMAGE_OPTIONS } from "./builtin-models.ts";
import { toPriceEntries } from "./price-entries.ts";
import { shortHash } from "./short-hash.ts";

/** Retries and timeouts used for every field a file leaves out. */
export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = {
  maxCalls: 6,
  perTargetAttempts: 2,
  baseDelayMs: 500,
  maxDelayMs: 30_000,
  maxInlineWaitMs: 10_000,
  callTimeoutMs: 60_000,
  deadlineMs: 300_000,
};

/** Circuit breaker settings used for every field a file leaves out. */
export const DEFAULT_BREAKER_POLICY: Readonly<BreakerPolicy> = {
  failureThreshold: 5,
  windowMs: 60_000,
  openMs: 30_000,
  halfOpenProbes: 1,
  keyRetryMs: 600_000,
};

/** The model a mock provider offers when its entry lists none. */
const MOCK_DEFAULT_MODEL = "mock-1";

// ---------------------------------------------------------------------------
// Scalars. Numbers and booleans may arrive as strings (`rpm: ${RPM}`), so the
// fields that hold them coerce numeric strings; every other field stays a string.

/** A schema-level message (which wins over the parse-level ones) that still says "is required" for a missing value. */
function unlessMissing(message: string) {
  return (issue: { input?: unknown }) => (issue.input === undefined ? "is required" : message);
}

const NUMERIC_STRING = /^[+-]?\d+(_\d+)*(\.\d+)?([eE][+-]?\d+)?$/;

function numberFromString(value: unknown): unknown {
  if (typeof value !== "string") return value;
  const trimmed = value.trim();
  return NUMERIC_STRING.test(trimmed) ? Number(trimmed.replaceAll("_", "")) : value;
}

function booleanFromString(value: unknown): unknown {
  if (value === "true") return true;
  if (value === "false") return false;
  return value;
}

function integer(min: number, minMessage: string) {
  return z.preprocess(numberFromString, z.number().int("must be a whole number").min(min, minMessage));
}

const PositiveInteger = integer(1, "must be greater than 0");
const NonNegativeInteger = integer(0, "must not be negative");
const MicroUsd = z.preprocess(
  numberFromString,
  z.number().int("must be a whole number of micro-USD").min(0, "must not be negative"),
);
const Flag = z.preprocess(booleanFromString, z.boolean());

const Name = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9_-]*$/,
    "must be lowercase letters, digits, '-' or '_', starting with a letter or digit",
  );
const KeyId = z
  .string()
  .max(64, "must be at most 64 characters")
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]*$/,
    "must be letters, digits, '.', '-' or '_', starting with a letter or digit",
  );
const ModelId = z.string().regex(/^\S+$/, "must be a model id without spaces");
const HttpUrl = z.url({ protocol: /^https?$/, error: unlessMissing("must be an http:// or https:// URL") });
const Headers = z.record(z.string(), z.string());

/** A key of `price.images`; checked by the record, whose message wins over zod's "Invalid key in record". */
const ImagePriceKey = z.string().regex(IMAGE_PRICE_KEY);
const ImagePrices = z
  .record(ImagePriceKey, MicroUsd, {
    error: (issue) =>
      issue.code === "invalid_key"
        ? 'must be "<width>x<height>/<quality>", "<width>x<height>" or "*/<quality>" (e.g. "1024x1024/high"), with the quality in lowercase letters'
        : undefined,
  })
  .refine((prices) => Object.keys(prices).length > 0, "list at least one image price, or leave images out");

// ---------------------------------------------------------------------------
// The file as written.

const PriceInput = z.strictObject({
  /** Micro-USD per million input tokens. */
  input: MicroUsd.optional(),
  /** Micro-USD per million input tokens served from the prompt cache; default: `input`. */
  cachedInput: MicroUsd.optional(),
  /** Micro-USD per million output tokens. */
  output: MicroUsd.optional(),
  /** Micro-USD per generated image; with `images`, the price of any image it does not list. */
  perImage: MicroUsd.optional(),
  /** Micro-USD per million input tokens on the provider's batch API (economy tier); default half of `input`. */
  batchInput: MicroUsd.optional(),
  /** Micro-USD per million output tokens on the provider's batch API; default half of `output`. */
  batchOutput: MicroUsd.optional(),
  /**
   * Micro-USD per generated image by size and quality: `"1024x1024/high"`, a size
   * for any quality (`"1024x1024"`) or a quality for any size (`"*\/high"`).
   * Most specific first, then `perImage` (see `PriceCatalog.imagePrice`).
   */
  images: ImagePrices.optional(),
});

const ImageOptionsInput = z.strictObject({
  /** Sizes the model accepts (`1024x1024`, `auto`); a job asking another size is refused with these. */
  sizes: z
    .array(z.string().regex(/^(\d{2,5}x\d{2,5}|auto)$/, "a size is WIDTHxHEIGHT (1024x1024) or auto"))
    .min(1)
    .optional(),
  qualities: z
    .array(z.string().regex(/^[a-z0-9]{1,16}$/, "a quality is a lower-case word (low, hd)"))
    .min(1)
    .optional(),
  maxImages: PositiveInteger.optional(),
});

const ModelInput = z.strictObject({
  id: ModelId,
  capabilities: z
    .array(z.enum(["text", "image"]))
    .min(1, "list at least one capability")
    .optional(),
  contextWindow: PositiveInteger.optional(),
  maxOutputTokens: PositiveInteger.optional(),
  price: PriceInput.optional(),
  zeroCost: Flag.optional(),
  /** For image models: the sizes, qualities and count per job they accept. */
  image: ImageOptionsInput.optional(),
});

const KeyLimitFields = {
  id: KeyId.optional(),
  priority: NonNegativeInteger.optional(),
  rpm: PositiveInteger.optional(),
  tpm: PositiveInteger.optional(),
  rpd: PositiveInteger.optional(),
};
const KeyInput = z.strictObject({ ...KeyLimitFields, apiKey: z.string().min(1, "must not be empty") });
/** A mock needs no secret; its keys exist to exercise key rotation and limits. */
const MockKeyInput = z.strictObject({ ...KeyLimitFields, apiKey: z.string().optional() });

const UserKeyLimitsInput = z.strictObject({
  rpm: PositiveInteger.optional(),
  tpm: PositiveInteger.optional(),
  rpd: PositiveInteger.optional(),
});

const ProviderFields = {
  name: Name,
  timeoutMs: PositiveInteger.optional(),
  defaultModel: ModelId.optional(),
  models: z.array(ModelInput).optional(),
  /**
   * Let jobs run on users' own keys (BYO keys) here. Default false. Only for an
   * upstream that checks the key and bills its owner: refused for the mock,
   * keyless servers and providers with operator `headers`.
   */
  acceptsUserKeys: Flag.optional(),
  /**
   * The RPM/TPM/RPD each user's own key gets here, in the router's shared limiter.
   * Default: the limits of the provider's first key (best priority).
   */
  userKeyLimits: UserKeyLimitsInput.optional(),
};
const RequiredKeys = z.array(KeyInput).min(1, "list at least one key");

/** `options` of a `mock` provider. */
export const MockFileOptions = z.strictObject({
  /** Simulated time to the answer, in milliseconds. */
  latencyMs: NonNegativeInteger.optional(),
  /** Probability (0..1) that a call fails with a retryable 503. */
  failureRate: z.preprocess(numberFromString, z.number().min(0).max(1, "must be between 0 and 1")).optional(),
});
export type MockFileOptions = z.output<typeof MockFileOptions>;

/** `options` of an `openai` or `openai-compatible` provider. */
export const OpenAIFileOptions = z.strictObject({
  organization: z.string().min(1).optional(),
  /** Send `max_completion_tokens` (OpenAI reasoning models) instead of `max_tokens`. */
  useMaxCompletionTokens: Flag.optional(),
  headers: Headers.optional(),
});
export type OpenAIFileOptions = z.output<typeof OpenAIFileOptions>;

/** `options` of an `anthropic` provider. */
export const AnthropicFileOptions = z.strictObject({
  /** `max_tokens` for requests that set none (the Messages API requires one). */
  defaultMaxTokens: PositiveInteger.optional(),
  headers: Headers.optional(),
});
export type AnthropicFileOptions = z.output<typeof AnthropicFileOptions>;

/** `options` of a `gemini` provider. */
export const GeminiFileOptions = z.strictObject({ headers: Headers.optional() });
export type GeminiFileOptions = z.output<typeof GeminiFileOptions>;

const ProviderInput = z.discriminatedUnion(
  "type",
  [
    z.strictObject({
      ...ProviderFields,
      type: z.literal("mock"),
      keys: z.array(MockKeyInput).min(1, "list at least one key, or leave keys out").optional(),
      options: MockFileOptions.optional(),
    }),
    z.strictObject({
      ...ProviderFields,
      type: z.literal("openai"),
      baseUrl: HttpUrl.optional(),
      keys: RequiredKeys,
      options: OpenAIFileOptions.optional(),
    }),
    z.strictObject({
      ...ProviderFields,
      type: z.literal("openai-compatible"),
      baseUrl: HttpUrl,
      // Local servers (Ollama, vLLM) need no key: leaving keys out gives one implicit key.
      keys: z
        .array(KeyInput)
        .min(1, "list at least one key, or leave keys out for a local server")
        .optional(),
      options: OpenAIFileOptions.optional(),
    }),
    z.strictObject({
      ...ProviderFields,
      type: z.literal("anthropic"),
      baseUrl: HttpUrl.optional(),
      keys: RequiredKeys,
      options: AnthropicFileOptions.optional(),
    }),
    z.strictObject({
      ...ProviderFields,
      type: z.literal("gemini"),
      baseUrl: HttpUrl.optional(),
      keys: RequiredKeys,
      options: GeminiFileOptions.optional(),
    }),
  ],
  {
    // The issue's input is the whole entry; its path already points at `type`.
    error: (issue) => {
      if (typeof issue.input !== "object" || issue.input === null || Array.isArray(issue.input)) {
        return "must be a map (name, type, keys, models, ...)";
      }
      return "type" in issue.input
        ? "must be one of openai, openai-compatible, anthropic, gemini, mock"
        : "is required";
    },
  },
);
type ProviderInput = z.output<typeof ProviderInput>;

const RouteInput = z.strictObject({
  name: Name,
  strategy: z
    .enum(["priority", "cost", "latency", "weighted", "least-busy"], {
      error: unlessMissing("must be one of priority, cost, latency, weighted, least-busy"),
    })
    .optional(),
  targets: z
    .array(
      z.strictObject({
        provider: Name,
        /** Default: the provider's default model. */
        model: ModelId.optional(),
        weight: PositiveInteger.optional(),
        tier: NonNegativeInteger.optional(),
      }),
    )
    .min(1, "list at least one target"),
});

const RetryInput = z.strictObject({
  maxCalls: PositiveInteger.optional(),
  perTargetAttempts: PositiveInteger.optional(),
  baseDelayMs: NonNegativeInteger.optional(),
  maxDelayMs: NonNegativeInteger.optional(),
  maxInlineWaitMs: NonNegativeInteger.optional(),
  callTimeoutMs: PositiveInteger.optional(),
  deadlineMs: PositiveInteger.optional(),
});

const BreakerInput = z.strictObject({
  failureThreshold: PositiveInteger.optional(),
  windowMs: PositiveInteger.optional(),
  openMs: PositiveInteger.optional(),
  halfOpenProbes: PositiveInteger.optional(),
  /** How long a key that failed authentication or ran out of credit rests before one call probes it. */
  keyRetryMs: PositiveInteger.optional(),
});

const ProvidersFileShape = z.strictObject({
  version: z.preprocess(numberFromString, z.literal(1, { error: unlessMissing("must be 1") })),
  priceVersion: z
    .preprocess((value) => (typeof value === "number" ? String(value) : value), z.string().min(1))
    .optional(),
  defaultRoute: Name.optional(),
  retry: RetryInput.optional(),
  breaker: BreakerInput.optional(),
  providers: z.array(ProviderInput).min(1, "list at least one provider"),
  routes: z.array(RouteInput).optional(),
});
type ProvidersFileShape = z.output<typeof ProvidersFileShape>;

// ---------------------------------------------------------------------------
// The file as the builder sees it: every default filled in.

/** A model's price in integer micro-USD (per million tokens, or per image). */
export interface ModelPrice {
  input: number;
  output: number;
  cachedInput?: number;
  perImage?: number;
  batchInput?: number;
  batchOutput?: number;
  /** Per image by `"<size>/<quality>"`, `"<size>"`, `"*\/<quality>"` or `"*"`, as the file gives them. */
  images?: Record<string, number>;
}

/** A model of a provider, defaults applied. */
export interface ModelSettings {
  id: string;
  capabilities: Capability[];
  contextWindow?: number;
  maxOutputTokens?: number;
  /** Absent exactly when `zeroCost` is true. */
  price?: ModelPrice;
  zeroCost: boolean;
  image?: ImageOptions;
}

/** An API key of a provider, defaults applied. */
export interface KeySettings {
  id: string;
  /** Absent for keys that need no secret: a mock's, or a keyless local server's implicit key. */
  apiKey?: string;
  priority: number;
  rpm?: number;
  tpm?: number;
  rpd?: number;
}

interface ProviderSettingsBase {
  name: string;
  /** Whether users' own keys may be used here (see the file's `acceptsUserKeys`). */
  acceptsUserKeys: boolean;
  /** Limits of each user's own key; set exactly when `acceptsUserKeys`. */
  userKeyLimits?: { rpm?: number; tpm?: number; rpd?: number };
  baseUrl?: string;
  timeoutMs?: number;
  /** At least one. */
  keys: KeySettings[];
  /** One of `models`. */
  defaultModel: string;
  /** At least one. */
  models: ModelSettings[];
}

/** A provider, defaults applied; `options` depend on its `type`. */
export type ProviderSettings =
  | (ProviderSettingsBase & { type: "mock"; options: MockFileOptions })
  | (ProviderSettingsBase & { type: "openai" | "openai-compatible"; options: OpenAIFileOptions })
  | (ProviderSettingsBase & { type: "anthropic"; options: AnthropicFileOptions })
  | (ProviderSettingsBase & { type: "gemini"; options: GeminiFileOptions });

/**
 * A providers file: the schema validates a parsed (and interpolated) file, checks
 * the rules that span fields, and fills in every default, so the result is
 * complete: each provider has keys, models and a default model, there is at
 * least one route, and `defaultRoute` and `priceVersion` are set.
 */
export const ProvidersFile = ProvidersFileShape.superRefine(checkCrossFieldRules).transform(normalize);
export type ProvidersFile = z.output<typeof ProvidersFile>;
/** A providers file as written (before defaults); numeric fields also accept numeric strings. */
export type ProvidersFileInput = z.input<typeof ProvidersFile>;

/** The models a provider entry ends up with: as listed, or the mock's implicit one. */
function modelIdsOf(provider: ProviderInput): string[] {
  if (provider.models !== undefined && provider.models.length > 0)
    return provider.models.map((model) => model.id);
  if (provider.type === "mock") return [provider.defaultModel ?? MOCK_DEFAULT_MODEL];
  return [];
}

function checkCrossFieldRules(file: ProvidersFileShape, context: z.RefinementCtx): void {
  function issue(path: PropertyKey[], message: string): void {
    context.addIssue({ code: "custom", path, message });
  }

  const providerIndex = new Map<string, number>();
  file.providers.forEach((provider, index) => {
    const seen = providerIndex.get(provider.name);
    if (seen === undefined) providerIndex.set(provider.name, index);
    else
      issue(
        ["providers", index, "name"],
        `duplicate provider name "${provider.name}" (also providers[${seen}])`,
      );
    checkProvider(provider, ["providers", index], issue);
  });

  const routeIndex = new Map<string, number>();
  (file.routes ?? []).forEach((route, index) => {
    const seen = routeIndex.get(route.name);
    if (seen === undefined) routeIndex.set(route.name, index);
    else issue(["routes", index, "name"], `duplicate route name "${route.name}" (also routes[${seen}])`);
    const targets = new Set<string>();
    route.targets.forEach((target, targetIndex) => {
      const path = ["routes", index, "targets", targetIndex];
      const at = providerIndex.get(target.provider);
      const provider = at === undefined ? undefined : file.providers[at];
      if (provider === undefined) {
        issue([...path, "provider"], `provider "${target.provider}" is not configured`);
        return;
      }
      const models = modelIdsOf(provider);
      const model = target.model ?? provider.defaultModel ?? models[0];
      if (target.model !== undefined && !models.includes(target.model)) {
        issue([...path, "model"], `model "${target.model}" is not listed under provider "${provider.name}"`);
        return;
      }
      const key = `${provider.name}/${model}`;
      if (targets.has(key)) issue(path, `duplicate target ${key}`);
      targets.add(key);
    });
  });

  if (file.defaultRoute !== undefined) {
    const defined =
      file.routes === undefined || file.routes.length === 0 ? ["default"] : [...routeIndex.keys()];
    if (!defined.includes(file.defaultRoute)) {
      issue(["defaultRoute"], `route "${file.defaultRoute}" is not defined`);
    }
  }

  const baseDelayMs = file.retry?.baseDelayMs ?? DEFAULT_RETRY_POLICY.baseDelayMs;
  const maxDelayMs = file.retry?.maxDelayMs ?? DEFAULT_RETRY_POLICY.maxDelayMs;
  if (maxDelayMs < baseDelayMs) {
    issue(["retry", "maxDelayMs"], `must be at least baseDelayMs (${baseDelayMs})`);
  }
}

function checkProvider(
  provider: ProviderInput,
  path: PropertyKey[],
  issue: (path: PropertyKey[], message: string) => void,
): void {
  const keyIds = new Map<string, number>();
  provider.keys?.forEach((key, index) => {
    const id = key.id ?? defaultKeyId(index);
    const seen = keyIds.get(id);
    if (seen === undefined) keyIds.set(id, index);
    else issue([...path, "keys", index, "id"], `duplicate key id "${id}" (also keys[${seen}])`);
  });

  checkUserKeys(provider, path, issue);

  const models = provider.models ?? [];
  if (models.length === 0 && provider.type !== "mock") {
    issue([...path, "models"], "list at least one model, with its price (or zeroCost: true)");
  }
  const modelIds = new Map<string, number>();
  models.forEach((model, index) => {
    const modelPath = [...path, "models", index];
    const seen = modelIds.get(model.id);
    if (seen === undefined) modelIds.set(model.id, index);
    else issue([...modelPath, "id"], `duplicate model id "${model.id}" (also models[${seen}])`);

    // Pricing fails closed: a model that is neither priced nor declared free is refused.
    const zeroCost = model.zeroCost ?? (provider.type === "mock" && model.price === undefined);
    if (model.price === undefined) {
      if (!zeroCost) issue([...modelPath, "price"], "a model needs a price or zeroCost: true");
      return;
    }
    if (model.zeroCost === true) {
      issue([...modelPath, "zeroCost"], "give either a price or zeroCost: true, not both");
      return;
    }
    const capabilities = model.capabilities ?? ["text"];
    const { input, output, perImage, images } = model.price;
    const hasTokenPrices = input !== undefined && output !== undefined;
    const hasImagePrices = perImage !== undefined || images !== undefined;
    if (capabilities.includes("text") && !hasTokenPrices) {
      issue([...modelPath, "price"], "a text model's price needs input and output");
    } else if (capabilities.includes("image") && !hasImagePrices && !hasTokenPrices) {
      issue([...modelPath, "price"], "an image model's price needs perImage or images (or input and output)");
    }
  });

  if (provider.defaultModel !== undefined && models.length > 0 && !modelIds.has(provider.defaultModel)) {
    issue([...path, "defaultModel"], `model "${provider.defaultModel}" is not listed in models`);
  }
}

/**
 * BYO keys only where the upstream itself checks the key: on the mock, a keyless
 * server or a provider authenticated by operator headers, a user's junk key would
 * run quota-free on the operator's capacity (or credentials).
 */
function checkUserKeys(
  provider: ProviderInput,
  path: PropertyKey[],
  issue: (path: PropertyKey[], message: string) => void,
): void {
  if (provider.acceptsUserKeys !== true) {
    if (provider.userKeyLimits !== undefined) {
      issue([...path, "userKeyLimits"], "applies only with acceptsUserKeys: true");
    }
    return;
  }
  const at = [...path, "acceptsUserKeys"];
  if (provider.type === "mock") {
    issue(
      at,
      "the mock provider cannot accept user keys: it checks no key, so their jobs would run without quota",
    );
  } else if (provider.type === "openai-compatible" && provider.keys === undefined) {
    issue(
      at,
      "a keyless server cannot accept user keys: it checks no key, so their jobs would run without quota; give it keys if it checks them",
    );
  } else if (provider.options?.headers !== undefined && Object.keys(provider.options.headers).length > 0) {
    issue(
      at,
      "a provider with operator headers cannot accept user keys: the headers may be what authenticates (they are never sent with a user's key); remove options.headers or acceptsUserKeys",
    );
  }
}

function defaultKeyId(index: number): string {
  return `key-${index + 1}`;
}

function normalize(file: ProvidersFileShape) {
  const providers = file.providers.map(normalizeProvider);
  const byName = new Map(providers.map((provider) => [provider.name, provider]));
  const routes: RouteSpec[] =
    file.routes !== undefined && file.routes.length > 0
      ? file.routes.map((route) => ({
          name: route.name,
          strategy: route.strategy ?? "priority",
          targets: route.targets.map((target) => ({
            provider: target.provider,
            model: target.model ?? byName.get(target.provider)!.defaultModel,
            weight: target.weight ?? 1,
            tier: target.tier ?? 0,
          })),
        }))
      : [defaultRouteTo(providers[0]!)];
  return {
    version: file.version,
    priceVersion: file.priceVersion ?? priceHash(providers),
    defaultRoute: file.defaultRoute ?? routes[0]!.name,
    retry: { ...DEFAULT_RETRY_POLICY, ...withoutUndefined(file.retry ?? {}) } as RetryPolicy,
    breaker: { ...DEFAULT_BREAKER_POLICY, ...withoutUndefined(file.breaker ?? {}) } as BreakerPolicy,
    providers,
    routes,
  };
}

function normalizeProvider(provider: ProviderInput): ProviderSettings {
  const models: ModelSettings[] =
    provider.models !== undefined && provider.models.length > 0
      ? provider.models.map((model) => normalizeModel(model, provider.type === "mock"))
      : [
          {
            id: provider.defaultModel ?? MOCK_DEFAULT_MODEL,
            capabilities: ["text", "image"],
            zeroCost: true,
            image: { ...MOCK_IMAGE_OPTIONS },
          },
        ];
  const keys: KeySettings[] =
    provider.keys === undefined
      ? [{ id: "default", priority: 1 }]
      : provider.keys.map((key, index) => ({
          ...withoutUndefined({ apiKey: key.apiKey, rpm: key.rpm, tpm: key.tpm, rpd: key.rpd }),
          id: key.id ?? defaultKeyId(index),
          priority: key.priority ?? 1,
        }));
  const acceptsUserKeys = provider.acceptsUserKeys ?? false;
  const firstKey = keys.toSorted((left, right) => left.priority - right.priority)[0];
  const base = {
    name: provider.name,
    acceptsUserKeys,
    ...(acceptsUserKeys
      ? {
          userKeyLimits: withoutUndefined(
            provider.userKeyLimits ?? { rpm: firstKey?.rpm, tpm: firstKey?.tpm, rpd: firstKey?.rpd },
          ),
        }
      : {}),
    ...withoutUndefined({
      baseUrl: "baseUrl" in provider ? provider.baseUrl : undefined,
      timeoutMs: provider.timeoutMs,
    }),
    keys,
    defaultModel: provider.defaultModel ?? models[0]!.id,
    models,
  };
  switch (provider.type) {
    case "mock":
      return { ...base, type: provider.type, options: provider.options ?? {} };
    case "openai":
    case "openai-compatible":
      return { ...base, type: provider.type, options: provider.options ?? {} };
    case "anthropic":
      return { ...base, type: provider.type, options: provider.options ?? {} };
    case "gemini":
      return { ...base, type: provider.type, options: provider.options ?? {} };
  }
}

function normalizeModel(model: NonNullable<ProviderInput["models"]>[number], mock: boolean): ModelSettings {
  const zeroCost = model.zeroCost ?? (mock && model.price === undefined);
  return {
    id: model.id,
    capabilities: [...new Set<Capability>(model.capabilities ?? ["text"])],
    ...withoutUndefined({ contextWindow: model.contextWindow, maxOutputTokens: model.maxOutputTokens }),
    ...(model.image === undefined ? {} : { image: withoutUndefined({ ...model.image }) as ImageOptions }),
    ...(model.price === undefined || zeroCost
      ? {}
      : {
          price: {
            input: model.price.input ?? 0,
            output: model.price.output ?? 0,
            ...withoutUndefined({
              cachedInput: model.price.cachedInput,
              perImage: model.price.perImage,
              images: model.price.images,
              batchInput: model.price.batchInput,
              batchOutput: model.price.batchOutput,
            }),
          },
        }),
    zeroCost,
  };
}

function defaultRouteTo(provider: ProviderSettings): RouteSpec {
  return {
    name: "default",
    strategy: "priority",
    targets: [{ provider: provider.name, model: provider.defaultModel, weight: 1, tier: 0 }],
  };
}

/** A hash of every price, sorted, so the same prices give the same version whatever their order in the file. */
function priceHash(providers: ProviderSettings[]): string {
  const entries = toPriceEntries(providers).sort(
    (left, right) => compare(left.provider, right.provider) || compare(left.model, right.model),
  );
  return shortHash(JSON.stringify(entries));
}

/** Code-unit order, unlike `localeCompare`, is the same on every machine. */
function compare(left: string, right: string): number {
  return left < right ? -1 : left > right ? 1 : 0;
}

function withoutUndefined<T extends object>(object: T): Partial<T> {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined)) as Partial<T>;
}
