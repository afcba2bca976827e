import type { ProviderBatchApi, RouterConfig, RouteTarget } from "@genq/providers";

/** Where an economy item goes: a target whose provider has a batch API, and the key to use. */
export interface EconomyTarget {
  provider: string;
  model: string;
  keyId: string;
  api: ProviderBatchApi;
}

/**
 * The first of a job's targets (in routing order) whose provider offers a batch API,
 * on its first key (by priority) that has one; undefined when none does (the mock,
 * OpenAI-compatible endpoints): such items run online.
 */
export function economyTarget(
  config: RouterConfig,
  targets: readonly RouteTarget[],
): EconomyTarget | undefined {
  for (const target of targets) {
    const deployment = config.providers.get(target.provider);
    if (deployment === undefined) continue;
    const keys = [...deployment.keys].sort((left, right) => left.priority - right.priority);
    const key = keys.find((candidate) => candidate.client.batches !== undefined);
    if (key?.client.batches !== undefined)
      return { provider: target.provider, model: target.model, keyId: key.id, api: key.client.batches };
  }
  return undefined;
}

/** The batch API of a provider's key, to poll a batch submitted with it; undefined when it is gone. */
export function batchApiOf(
  config: RouterConfig,
  provider: string,
  keyId: string,
): ProviderBatchApi | undefined {
  return config.providers.get(provider)?.keys.find((key) => key.id === keyId)?.client.batches;
}
