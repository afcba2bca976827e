import type { RouterConfig } from "../router/types.ts";
import type {
  ConfigChangeListener,
  ConfigSource,
  ConfigSourceLogger,
  ReloadResult,
} from "./config-source.ts";
import {
  EMPTY_PROVIDER_OVERLAY,
  MERGED_CONFIG_ORIGIN,
  type ProviderConfigOverlay,
  validateMergedProviders,
} from "./provider-layers.ts";
import { ProvidersConfigError } from "./providers-config-error.ts";
import type { ProvidersFile } from "./providers-file.ts";

/** The base layer: the providers file, or the one the environment stands for. */
export interface ProviderBaseLayer {
  /** Validated on its own: the file must be valid without the database. */
  file: ProvidersFile;
  /** As written, `${ENV}` expanded; the database layer is merged into this. */
  data: Record<string, unknown>;
  /** Hashed into the config's version. */
  source: string;
}

/** Options for {@link createLayeredConfigSource}. */
export interface LayeredConfigSourceOptions {
  /** Reads the base layer; throws a {@link ProvidersConfigError} for a bad file. */
  loadBase: () => Promise<ProviderBaseLayer>;
  /** Reads the database layer (secrets opened). */
  loadOverlay: () => Promise<ProviderConfigOverlay>;
  /** Turns the validated merged file into a config, e.g. with `buildRouterConfig`. */
  build: (
    file: ProvidersFile,
    options: { source: string; priceVersions: Record<string, string> },
  ) => RouterConfig;
  logger?: ConfigSourceLogger;
}

/** A {@link ConfigSource} over two layers: the providers file and the database's. */
export interface LayeredConfigSource extends ConfigSource {
  /** Re-reads the database layer only (a change was announced, or its version moved). */
  reloadOverlay(): Promise<ReloadResult>;
  /** The last database version read, whether it was applied or refused (0 before any). */
  overlayVersion(): number;
  /** The base layer's data as written (secrets included: mask before it leaves the process). */
  baseData(): Record<string, unknown>;
}

/**
 * The worker's configuration from the providers file (or environment) with the
 * database layer laid over it (decision 0023). Either layer reloads alone, and a
 * new config is swapped in only when the merged whole validates and builds; a bad
 * change keeps the config in force, as a bad file does on SIGHUP. The base must
 * load at start (its error stops start-up); a database layer that does not merge
 * at start is logged and the base runs alone until a good one arrives.
 */
export async function createLayeredConfigSource(
  options: LayeredConfigSourceOptions,
): Promise<LayeredConfigSource> {
  const { logger } = options;
  let base = await options.loadBase();
  let overlay = EMPTY_PROVIDER_OVERLAY;
  // The last database version read, applied or refused: a refused one is not retried until it moves.
  let seenVersion = 0;
  let current = buildFrom(base, overlay);
  const listeners = new Set<ConfigChangeListener>();
  let queue: Promise<unknown> = Promise.resolve();

  function buildFrom(layer: ProviderBaseLayer, next: ProviderConfigOverlay): RouterConfig {
    const empty = next.version === 0 && next.providers.length === 0 && next.routes.length === 0;
    const file = empty ? layer.file : validateMergedProviders(layer.data, next);
    try {
      return options.build(file, {
        source: empty ? layer.source : `${layer.source}\n#database:${next.version}`,
        priceVersions: next.priceVersions,
      });
    } catch (error) {
      if (ProvidersConfigError.is(error)) throw error;
      const message = error instanceof Error ? error.message : String(error);
      throw new ProvidersConfigError(MERGED_CONFIG_ORIGIN, [{ path: "(build)", message }]);
    }
  }

  async function attempt(readBase: boolean): Promise<ReloadResult> {
    let nextBase = base;
    let nextOverlay: ProviderConfigOverlay;
    let next: RouterConfig;
    try {
      if (readBase) nextBase = await options.loadBase();
      nextOverlay = await options.loadOverlay();
      seenVersion = nextOverlay.version;
      next = buildFrom(nextBase, nextOverlay);
    } catch (error) {
      const configError = ProvidersConfigError.is(error)
        ? error
        : new ProvidersConfigError(MERGED_CONFIG_ORIGIN, [
            { path: "(database)", message: error instanceof Error ? error.message : String(error) },
          ]);
      logger?.error(
        { issues: configError.issues, origin: configError.origin, version: current.version },
        "provider configuration rejected; keeping the current configuration",
      );
      return { ok: false, error: configError };
    }
    base = nextBase;
    overlay = nextOverlay;
    if (next.version === current.version) return { ok: true, version: current.version, changed: false };
    const previous = current;
    current = next;
    logger?.info(
      {
        version: current.version,
        previousVersion: previous.version,
        databaseVersion: overlay.version,
        priceVersion: current.priceVersion,
      },
      "provider configuration reloaded",
    );
    for (const listener of listeners) {
      try {
        listener(current, previous);
      } catch (error) {
        logger?.error({ error }, "a providers config listener failed");
      }
    }
    return { ok: true, version: current.version, changed: true };
  }

  function enqueue(readBase: boolean): Promise<ReloadResult> {
    const run = queue.then(() => attempt(readBase));
    queue = run.catch(() => undefined);
    return run;
  }

  const first = await enqueue(false);
  if (!first.ok) logger?.warn({}, "starting with the providers file alone until the database layer is fixed");

  return {
    current: () => current,
    reload: () => enqueue(true),
    reloadOverlay: () => enqueue(false),
    overlayVersion: () => seenVersion,
    baseData: () => base.data,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close() {},
  };
}
