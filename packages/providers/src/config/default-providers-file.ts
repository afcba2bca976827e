import { builtinModels } from "./builtin-models.ts";
import { validateProvidersFile } from "./parse-providers-file.ts";
import { ProvidersConfigError, type ProvidersConfigIssue } from "./providers-config-error.ts";
import type { ProvidersFile, ProvidersFileInput } from "./providers-file.ts";

/** One provider's environment-style settings (`OPENAI_API_KEY`, `OPENAI_BASE_URL`, ...). */
export interface DefaultProviderSettings {
  apiKey: string;
  baseUrl?: string;
  /** Default: the provider's usual default (`gpt-4o-mini`, `claude-sonnet-4-5`, `gemini-2.5-flash`). */
  defaultModel?: string;
  timeoutMs?: number;
  /** Let users run jobs here on their own keys (the file's `acceptsUserKeys`). Default false. */
  acceptsUserKeys?: boolean;
}

/** The settings of a deployment without a providers file; a provider is offered when it is given. */
export interface DefaultProvidersInput {
  /** The provider the `default` route goes to. */
  defaultProvider: string;
  mock?: { latencyMs?: number; failureRate?: number };
  openai?: DefaultProviderSettings;
  anthropic?: DefaultProviderSettings;
  gemini?: DefaultProviderSettings;
}

const CLOUD_PROVIDERS = [
  { name: "openai", defaultModel: "gpt-4o-mini" },
  { name: "anthropic", defaultModel: "claude-sonnet-4-5" },
  { name: "gemini", defaultModel: "gemini-2.5-flash" },
] as const;

/** Dated snapshots (`gpt-4o-mini-2024-07-18`) cost what their alias costs. */
const DATE_SUFFIX = /-\d{4}-\d{2}-\d{2}$/;

/**
 * The providers file a deployment gets when it configures none, built from the
 * legacy environment-style settings: the mock (one free model, `mock-1`), and
 * OpenAI, Anthropic and Gemini each with one key `default` and the built-in
 * priced models (`DEFAULT_PRICE_ENTRIES`). The route `default` goes to
 * `defaultProvider` and its default model. Pricing fails closed: a default model
 * without a built-in price is refused, since only a providers file can price it.
 * The result passes the same validation as a file.
 */
export function defaultProvidersFile(input: DefaultProvidersInput): ProvidersFile {
  const data = defaultProvidersData(input);
  const providers = data.providers;
  try {
    return validateProvidersFile(data, { origin: "environment" });
  } catch (error) {
    if (!ProvidersConfigError.is(error)) throw error;
    // Name the provider rather than its position in a list the operator never wrote.
    throw new ProvidersConfigError(
      "environment",
      error.issues.map((issue) => ({
        ...issue,
        path: issue.path.replace(/^providers\[(\d+)\]/, (whole, index: string) => {
          return providers[Number(index)]?.name ?? whole;
        }),
      })),
    );
  }
}

/**
 * The providers file {@link defaultProvidersFile} validates, as written (before
 * defaults): the base layer under the database's when there is no providers file.
 * Throws a {@link ProvidersConfigError} for settings that cannot make one.
 */
export function defaultProvidersData(input: DefaultProvidersInput) {
  const issues: ProvidersConfigIssue[] = [];
  const providers: ProvidersFileInput["providers"] = [];
  if (input.mock !== undefined) {
    providers.push({ name: "mock", type: "mock", options: { ...input.mock } });
  }
  for (const { name, defaultModel: usualModel } of CLOUD_PROVIDERS) {
    const settings = input[name];
    if (settings === undefined) continue;
    const defaultModel = settings.defaultModel ?? usualModel;
    const models = builtinModels(name);
    if (!models.some((model) => model.id === defaultModel)) {
      const alias = models.find((model) => model.id === defaultModel.replace(DATE_SUFFIX, ""));
      if (alias === undefined) {
        issues.push({
          path: `${name}.defaultModel`,
          message: `model "${defaultModel}" has no built-in price; configure ${name} in a providers file and give the model a price`,
        });
        continue;
      }
      models.push({ ...alias, id: defaultModel });
    }
    providers.push({
      name,
      type: name,
      keys: [{ id: "default", apiKey: settings.apiKey }],
      defaultModel,
      models,
      ...(settings.baseUrl === undefined ? {} : { baseUrl: settings.baseUrl }),
      ...(settings.timeoutMs === undefined ? {} : { timeoutMs: settings.timeoutMs }),
      ...(settings.acceptsUserKeys === true ? { acceptsUserKeys: true } : {}),
    });
  }
  const target = providers.find((provider) => provider.name === input.defaultProvider);
  if (target === undefined && !issues.some((issue) => issue.path.startsWith(`${input.defaultProvider}.`))) {
    issues.push({
      path: "defaultProvider",
      message: `provider "${input.defaultProvider}" is not configured (give its settings, e.g. its API key)`,
    });
  }
  if (issues.length > 0 || target === undefined) throw new ProvidersConfigError("environment", issues);

  return {
    version: 1,
    defaultRoute: "default",
    providers,
    routes: [{ name: "default", strategy: "priority", targets: [{ provider: target.name }] }],
  } satisfies ProvidersFileInput;
}
