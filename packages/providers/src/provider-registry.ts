import { GenqError } from "@genq/core";
import type { Provider } from "./provider.ts";

/** Options for {@link createProviderRegistry}. */
export interface ProviderRegistryOptions {
  /** The provider used when a job names none. */
  defaultProvider: string;
  /** The model used per provider when a job names none; falls back to the provider's own default. */
  defaultModels: Record<string, string>;
}

/** The configured providers, by name. */
export interface ProviderRegistry {
  /** The provider called `name`; throws `invalid_request` naming the configured ones when unknown. */
  get(name: string): Provider;
  /** The provider and model for a job: the job's choice, else the defaults. */
  resolve(selection: { provider?: string; model?: string }): { provider: Provider; model: string };
  /** The configured provider names, in the order given. */
  names(): string[];
}

/**
 * A registry of configured providers. Unknown names are the caller's mistake
 * (`invalid_request`, not retryable): a job asking for an unconfigured provider
 * will not succeed on another attempt.
 */
export function createProviderRegistry(
  providers: Provider[],
  options: ProviderRegistryOptions,
): ProviderRegistry {
  const byName = new Map<string, Provider>();
  for (const provider of providers) {
    if (byName.has(provider.name)) throw new TypeError(`provider "${provider.name}" is configured twice`);
    byName.set(provider.name, provider);
  }
  if (!byName.has(options.defaultProvider)) {
    throw new TypeError(
      `the default provider "${options.defaultProvider}" is not configured; configured: ${[...byName.keys()].join(", ") || "none"}`,
    );
  }

  function get(name: string): Provider {
    const provider = byName.get(name);
    if (provider === undefined) {
      const configured = [...byName.keys()];
      throw new GenqError(
        "invalid_request",
        `provider ${name} is not configured; configured: ${configured.join(", ")}`,
        { details: { provider: name, configured } },
      );
    }
    return provider;
  }

  return {
    get,
    names: () => [...byName.keys()],
    resolve(selection) {
      const provider = get(selection.provider ?? options.defaultProvider);
      const model = selection.model || options.defaultModels[provider.name] || provider.defaultModel;
      if (!model) {
        throw new GenqError(
          "invalid_request",
          `no model given and provider ${provider.name} has no default model; name one in "model"`,
          { details: { provider: provider.name } },
        );
      }
      return { provider, model };
    },
  };
}
