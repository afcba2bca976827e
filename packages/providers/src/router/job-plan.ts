import { maxInputTokens } from "../estimate-tokens.ts";
import { createPriceCatalog, type PricedImage } from "../price-catalog.ts";
import { resolveTargets } from "./resolve-targets.ts";
import type { RouterCatalog } from "./router-catalog.ts";
import type { Capability, RouteTarget, Routing } from "./types.ts";

/**
 * The output tokens a text job reserves, and caps its calls at, when neither the job
 * (`maxTokens`) nor any candidate model (`maxOutputTokens`) gives a cap.
 * @defaultValue 1024
 */
export const DEFAULT_OUTPUT_TOKENS = 1_024;

/** A job's provider choice, as stored with the job. */
export interface JobSelection {
  provider?: string | undefined;
  model?: string | undefined;
}

/** What a job asks for, as far as its plan depends on it. */
export type JobPlanRequest =
  | {
      type: "text";
      selection: JobSelection;
      messages: ReadonlyArray<{ content: string }>;
      maxTokens?: number | undefined;
    }
  | {
      type: "image";
      selection: JobSelection;
      prompt?: string | undefined;
      n: number;
      image?: PricedImage | undefined;
    };

/**
 * A job's plan: where it may run and the most it can use there. The quota holds
 * `textTokens`, `images` and `costMicroUsd`; a text job's calls send `outputTokens`
 * as their output cap, so no call can use more than is held.
 */
export interface JobPlan {
  /** Every provider/model the job may be routed to; empty when the routing is unknown or refuses it. */
  targets: RouteTarget[];
  /** An upper bound of the input tokens (the UTF-8 byte bound of {@link maxInputTokens}). */
  inputTokens: number;
  /** Text: the output cap every call sends; image jobs: 0. */
  outputTokens: number;
  /** Text: input plus output, what the quota holds; image jobs: 0 (images are held by count). */
  textTokens: number;
  images: number;
  /** The worst-case cost over {@link JobPlan.targets}, in micro-USD; 0 when there are none. */
  costMicroUsd: number;
}

/**
 * Plans a job once, from the request and the routing it will run with (undefined when
 * unknown, as in an API no worker has published its catalog to yet): the text output
 * cap is the job's `maxTokens`, else the smallest `maxOutputTokens` of the candidate
 * models (one cap every candidate accepts), else {@link DEFAULT_OUTPUT_TOKENS}; the
 * cost is the most any candidate would charge for that worst case. A job the routing
 * refuses gets no targets and no cost (running it fails with the reason).
 */
export function planJob(routing: Routing | undefined, request: JobPlanRequest): JobPlan {
  const capability: Capability = request.type;
  const targets = routing === undefined ? [] : candidates(routing, request.selection, capability);
  if (request.type === "image") {
    const inputTokens = maxInputTokens([{ content: request.prompt ?? "" }]);
    const estimate = { inputTokens, outputTokens: 0, images: request.n, image: request.image };
    return {
      targets,
      inputTokens,
      outputTokens: 0,
      textTokens: 0,
      images: request.n,
      costMicroUsd: worstCaseCostMicroUsd(routing, targets, estimate),
    };
  }
  const inputTokens = maxInputTokens(request.messages);
  const outputTokens =
    request.maxTokens ??
    (routing === undefined ? undefined : smallestOutputCap(routing, targets)) ??
    DEFAULT_OUTPUT_TOKENS;
  return {
    targets,
    inputTokens,
    outputTokens,
    textTokens: inputTokens + outputTokens,
    images: 0,
    costMicroUsd: worstCaseCostMicroUsd(routing, targets, { inputTokens, outputTokens, images: 0 }),
  };
}

/** The worst-case size a cost is estimated for. */
export interface CostEstimate {
  inputTokens: number;
  outputTokens: number;
  images: number;
  image?: PricedImage | undefined;
}

/** The most `estimate` costs on any of `targets` (0 without routing or targets). */
export function worstCaseCostMicroUsd(
  routing: Routing | undefined,
  targets: readonly RouteTarget[],
  estimate: CostEstimate,
): number {
  if (routing === undefined) return 0;
  let max = 0;
  for (const target of targets) {
    const { costMicroUsd } = routing.prices.costMicroUsd({
      provider: target.provider,
      model: target.model,
      usage: {
        inputTokens: estimate.inputTokens,
        outputTokens: estimate.outputTokens,
        images: estimate.images,
      },
      ...(estimate.image === undefined ? {} : { image: estimate.image }),
    });
    max = Math.max(max, costMicroUsd);
  }
  return max;
}

/** The targets a selection resolves to, every tier; empty when the routing refuses it. */
export function candidates(routing: Routing, selection: JobSelection, capability: Capability): RouteTarget[] {
  try {
    return resolveTargets(routing, {
      ...(selection.provider === undefined ? {} : { provider: selection.provider }),
      ...(selection.model === undefined ? {} : { model: selection.model }),
      capability,
    }).tiers.flat();
  } catch {
    return []; // not routable: the router call itself fails with the reason
  }
}

function smallestOutputCap(routing: Routing, targets: readonly RouteTarget[]): number | undefined {
  let cap: number | undefined;
  for (const target of targets) {
    const declared = routing.providers.get(target.provider)?.models.get(target.model)?.maxOutputTokens;
    if (declared !== undefined) cap = Math.min(cap ?? declared, declared);
  }
  return cap;
}

/**
 * The routing a published catalog describes, for planning where the configuration is
 * not at hand (the API); undefined for catalogs of workers that publish no prices, as
 * a job could not be priced with them.
 */
export function routingFromCatalog(catalog: RouterCatalog): Routing | undefined {
  if (catalog.prices === undefined) return undefined;
  return {
    providers: new Map(
      catalog.providers.map((provider) => [
        provider.name,
        {
          name: provider.name,
          defaultModel: provider.defaultModel,
          models: new Map(
            provider.models.map((model) => [
              model.id,
              {
                id: model.id,
                capabilities: model.capabilities.filter(isCapability),
                zeroCost: model.zeroCost,
                ...(model.maxOutputTokens === undefined ? {} : { maxOutputTokens: model.maxOutputTokens }),
              },
            ]),
          ),
        },
      ]),
    ),
    routes: new Map(
      catalog.routes.map((route) => [
        route.name,
        {
          name: route.name,
          // The strategy orders candidates; planning looks at all of them, so any name will do.
          strategy: "priority",
          targets: route.targets.map((target) => ({ ...target })),
        },
      ]),
    ),
    defaultRoute: catalog.defaultRoute,
    prices: createPriceCatalog(catalog.prices, { includeDefaults: false, version: catalog.priceVersion }),
  };
}

function isCapability(value: string): value is Capability {
  return value === "text" || value === "image";
}
