import { type CreateImageJobRequest, GenqError } from "@genq/core";
import type { RouterCatalog } from "@genq/providers";

type CatalogModel = RouterCatalog["providers"][number]["models"][number] & { providerType: string };

/** Provider types whose adapters edit images and make variations. */
const EDITING_PROVIDER_TYPES: ReadonlySet<string> = new Set(["openai", "openai-compatible", "mock"]);

/**
 * The image models a job may run on, from the catalog the workers publish: the
 * named provider (its model, or its first image model), a route named as the
 * model, every provider offering the named model, or the default route.
 */
function candidates(catalog: RouterCatalog, body: CreateImageJobRequest): CatalogModel[] {
  const canImage = (model: CatalogModel | undefined): model is CatalogModel =>
    model?.capabilities.includes("image") ?? false;
  const modelsOf = (provider: RouterCatalog["providers"][number]): CatalogModel[] =>
    provider.models.map((model) => ({ ...model, providerType: provider.type }));
  const modelOf = (name: string, id: string | undefined) => {
    const provider = catalog.providers.find((candidate) => candidate.name === name);
    return provider === undefined ? undefined : modelsOf(provider).find((model) => model.id === id);
  };
  if (body.provider !== undefined) {
    const provider = catalog.providers.find((candidate) => candidate.name === body.provider);
    if (provider === undefined) return [];
    const models = modelsOf(provider);
    if (body.model !== undefined) return [models.find((model) => model.id === body.model)].filter(canImage);
    const preferred = models.find((model) => model.id === provider.defaultModel);
    return [canImage(preferred) ? preferred : models.find(canImage)].filter(canImage);
  }
  const route = catalog.routes.find((candidate) => candidate.name === (body.model ?? catalog.defaultRoute));
  if (route !== undefined) {
    const models = route.targets.map((target) => modelOf(target.provider, target.model)).filter(canImage);
    if (models.length > 0 || body.model !== undefined) return models;
  }
  if (body.model !== undefined) {
    return catalog.providers.map((provider) => modelOf(provider.name, body.model)).filter(canImage);
  }
  return catalog.providers.flatMap((provider) => modelsOf(provider).filter(canImage)).slice(0, 1);
}

/**
 * Refuses an image job its model cannot run, naming what is allowed: a size,
 * quality or image count that no candidate accepts. Unknown providers and models
 * are left to the worker's router, which names the configured ones. Without a
 * published catalog (no worker has started yet) nothing is checked here.
 */
export function checkImageRequest(catalog: RouterCatalog | undefined, body: CreateImageJobRequest): void {
  if (catalog === undefined) return;
  const models = candidates(catalog, body);
  if (models.length === 0) return;
  const { size, quality, n, operation } = body.input;
  if (operation !== "generate" && !models.some((model) => EDITING_PROVIDER_TYPES.has(model.providerType))) {
    const providers = [...new Set(models.map((model) => model.providerType))].join(", ");
    throw new GenqError(
      "invalid_request",
      `body.input.operation: ${operation} is not offered by ${providers}; image edits and variations run on OpenAI (or OpenAI-compatible) providers and the mock`,
      { details: { location: "body", field: "input.operation" } },
    );
  }
  const refuse = (field: string, message: string, allowed: unknown) =>
    new GenqError("invalid_request", `body.input.${field}: ${message}`, {
      details: { location: "body", field: `input.${field}`, allowed },
    });
  const named = models.map((model) => model.id).join(", ");
  if (size !== undefined && models.every((model) => model.image?.sizes !== undefined)) {
    const allowed = [...new Set(models.flatMap((model) => model.image?.sizes ?? []))];
    if (!allowed.includes(size)) {
      throw refuse(
        "size",
        `${size} is not a size ${named} can make; allowed: ${allowed.join(", ")}`,
        allowed,
      );
    }
  }
  if (quality !== undefined && models.every((model) => model.image?.qualities !== undefined)) {
    const allowed = [...new Set(models.flatMap((model) => model.image?.qualities ?? []))];
    if (!allowed.includes(quality.toLowerCase())) {
      throw refuse(
        "quality",
        `${quality} is not a quality of ${named}; allowed: ${allowed.join(", ")}`,
        allowed,
      );
    }
  }
  if (models.every((model) => model.image?.maxImages !== undefined)) {
    const max = Math.max(...models.map((model) => model.image?.maxImages ?? 0));
    if (n > max)
      throw refuse("n", `${named} makes at most ${max} image${max === 1 ? "" : "s"} per job`, { max });
  }
}
