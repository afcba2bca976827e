import { validateProvidersFile } from "./parse-providers-file.ts";
import { ProvidersConfigError } from "./providers-config-error.ts";
import type { ProvidersFile } from "./providers-file.ts";

/** A providers-file entry (a provider or a route) as plain data; its `name` is what layers match on. */
export type NamedEntry = { name: string } & Record<string, unknown>;

/**
 * The layer the admin API keeps in PostgreSQL (decision 0023), in the providers
 * file's own shape. Nothing in it is interpolated: `${X}` in a stored value is
 * text, never a worker's environment variable.
 */
export interface ProviderConfigOverlay {
  /** The database's configuration version: raised by every change. */
  version: number;
  /** Enabled providers, as file entries (keys carry their opened secrets, or a mask). */
  providers: NamedEntry[];
  /** Disabled providers: left out, and hiding a file entry of the same name. */
  disabledProviders: string[];
  /** Enabled routes, as file entries. */
  routes: NamedEntry[];
  /** Disabled routes: left out, and hiding a file route of the same name. */
  disabledRoutes: string[];
  /** The price version id of each model priced in the database, by `provider/model`. */
  priceVersions: Record<string, string>;
}

/** An overlay with nothing in it: the providers file alone. */
export const EMPTY_PROVIDER_OVERLAY: ProviderConfigOverlay = {
  version: 0,
  providers: [],
  disabledProviders: [],
  routes: [],
  disabledRoutes: [],
  priceVersions: {},
};

/** Where the merged configuration's problems are said to be. */
export const MERGED_CONFIG_ORIGIN = "providers file + database";

/**
 * The file with the database layer laid over it: a database provider or route
 * replaces the file's entry of the same name whole, a disabled one removes it,
 * and the rest is added after the file's entries. The file's top level (retry,
 * breaker, priceVersion, defaultRoute) stays. A file without routes gets its
 * implicit `default` route written out, so adding a route in the database does
 * not silently change which route is the default.
 */
export function mergeProviderLayers(base: Record<string, unknown>, overlay: ProviderConfigOverlay): unknown {
  const overlayProviders = new Set([
    ...overlay.providers.map((entry) => entry.name),
    ...overlay.disabledProviders,
  ]);
  const overlayRoutes = new Set([...overlay.routes.map((entry) => entry.name), ...overlay.disabledRoutes]);
  const baseProviders = entriesOf(base.providers);
  const providers = [
    ...baseProviders.filter((entry) => !overlayProviders.has(entry.name)),
    ...overlay.providers,
  ];
  const baseRoutes = entriesOf(base.routes);
  const touched = overlay.providers.length + overlay.disabledProviders.length + overlay.routes.length;
  if (touched === 0 && overlay.disabledRoutes.length === 0) return base;

  // The file's implicit route goes to its first provider, whatever the database put before it.
  const firstProvider = baseProviders[0]?.name ?? providers[0]?.name;
  const implicitDefault = baseRoutes.length === 0 && firstProvider !== undefined;
  const routes = (
    implicitDefault
      ? [{ name: "default", strategy: "priority", targets: [{ provider: firstProvider }] }]
      : baseRoutes
  ).filter((entry) => !overlayRoutes.has(entry.name));
  return {
    ...base,
    providers,
    routes: [...routes, ...overlay.routes],
    defaultRoute: base.defaultRoute ?? (implicitDefault ? "default" : baseRoutes[0]?.name),
  };
}

/**
 * Validates the merged configuration with the providers file's own schema and
 * messages. A problem in a provider or route is located by its name
 * (`providers[acme].models[0].price`), since the list position of a merged entry
 * means nothing to the operator. Throws a {@link ProvidersConfigError}.
 */
export function validateMergedProviders(
  base: Record<string, unknown>,
  overlay: ProviderConfigOverlay,
): ProvidersFile {
  const merged = mergeProviderLayers(base, overlay) as { providers?: NamedEntry[]; routes?: NamedEntry[] };
  try {
    return validateProvidersFile(merged, { origin: MERGED_CONFIG_ORIGIN });
  } catch (error) {
    if (!ProvidersConfigError.is(error)) throw error;
    throw new ProvidersConfigError(
      MERGED_CONFIG_ORIGIN,
      error.issues.map((issue) => ({
        ...issue,
        path: issue.path.replace(/^(providers|routes)\[(\d+)\]/, (whole, list: string, index: string) => {
          const entries = list === "providers" ? merged.providers : merged.routes;
          const name = entries?.[Number(index)]?.name;
          return typeof name === "string" ? `${list}[${name}]` : whole;
        }),
      })),
    );
  }
}

/** What stands in for a secret in data that leaves the worker (the API validates against it). */
export const MASKED_SECRET = "********";

/**
 * A copy of file-shaped data with every `apiKey` and every header value masked:
 * still valid where the original was (a mask is a non-empty string), and safe to
 * publish or log.
 */
export function maskProviderSecrets<T>(data: T): T {
  return mask(data, undefined) as T;
}

function mask(value: unknown, key: string | undefined): unknown {
  if (Array.isArray(value)) return value.map((item) => mask(item, undefined));
  if (value === null || typeof value !== "object") {
    return key === "apiKey" && typeof value === "string" ? MASKED_SECRET : value;
  }
  return Object.fromEntries(
    Object.entries(value).map(([name, inner]) => [
      name,
      name === "headers" && inner !== null && typeof inner === "object" && !Array.isArray(inner)
        ? Object.fromEntries(Object.keys(inner).map((header) => [header, MASKED_SECRET]))
        : mask(inner, name),
    ]),
  );
}

function entriesOf(value: unknown): NamedEntry[] {
  if (!Array.isArray(value)) return [];
  return value.filter(
    (entry): entry is NamedEntry =>
      entry !== null && typeof entry === "object" && typeof (entry as { name?: unknown }).name === "string",
  );
}
