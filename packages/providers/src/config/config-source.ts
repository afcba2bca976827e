import { type FSWatcher, watch as watchDirectory } from "node:fs";
import { basename, dirname } from "node:path";
import type { RouterConfig } from "../router/types.ts";
import type { EnvironmentVariables } from "./interpolate-env.ts";
import { readProvidersFile } from "./load-providers-file.ts";
import { ProvidersConfigError } from "./providers-config-error.ts";
import type { ProvidersFile } from "./providers-file.ts";

/** The logging a {@link ConfigSource} does; a pino logger fits. */
export interface ConfigSourceLogger {
  info(object: object, message: string): void;
  warn(object: object, message: string): void;
  error(object: object, message: string): void;
}

/** Options for {@link createConfigSource}. */
export interface ConfigSourceOptions {
  /** The providers file (`.yaml`, `.yml` or `.json`). */
  path: string;
  env: EnvironmentVariables;
  /** Turns a validated file into a config, e.g. `(file, source) => buildRouterConfig(file, { source, ... })`. */
  build: (file: ProvidersFile, source: string) => RouterConfig;
  logger?: ConfigSourceLogger;
  /** Reload when the file changes. Default false. */
  watch?: boolean;
  /** How long the file must be quiet before a watched change is loaded. Default 200 ms. */
  watchDebounceMs?: number;
}

/** The outcome of {@link ConfigSource.reload}. */
export type ReloadResult =
  | {
      ok: true;
      /** The version now current. */
      version: string;
      /** False when the file's text was unchanged, so nothing was rebuilt. */
      changed: boolean;
    }
  | { ok: false; error: ProvidersConfigError };

/** Called with the new config after a successful reload that changed it. */
export type ConfigChangeListener = (config: RouterConfig, previous: RouterConfig) => void;

/** The current router config, reloadable from its providers file. */
export interface ConfigSource {
  /** The config in force: the last one that loaded and built completely. */
  current(): RouterConfig;
  /**
   * Reads, validates and builds the file again, and swaps it in only if all of
   * that succeeded; a bad file keeps the current config. Concurrent calls run one
   * after another. Never rejects.
   */
  reload(): Promise<ReloadResult>;
  /** Returns a function that removes the listener. */
  onChange(listener: ConfigChangeListener): () => void;
  /** Stops watching. `current()` and `reload()` keep working. */
  close(): void;
}

/**
 * Loads the providers file and keeps its config current. The first load must
 * succeed: it throws the {@link ProvidersConfigError}, so start-up stops with its
 * message. Signal handling (SIGHUP) belongs to the app, which calls `reload()`.
 * With `watch`, the file's directory is watched rather than the file, because
 * editors and Kubernetes ConfigMaps replace the file instead of writing into it.
 */
export async function createConfigSource(options: ConfigSourceOptions): Promise<ConfigSource> {
  const { path, env, build, logger } = options;
  const first = await load();
  if (!first.ok) throw first.error;
  let current = first.config;
  let currentSource = first.source;
  const listeners = new Set<ConfigChangeListener>();
  let queue: Promise<unknown> = Promise.resolve();
  let watcher: FSWatcher | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  async function load(): Promise<
    { ok: true; config: RouterConfig; source: string } | { ok: false; error: ProvidersConfigError }
  > {
    try {
      const { file, source } = await readProvidersFile(path, env);
      return { ok: true, config: build(file, source), source };
    } catch (error) {
      if (ProvidersConfigError.is(error)) return { ok: false, error };
      // A build failure that is not a config error (a bug, a failing client constructor).
      const message = error instanceof Error ? error.message : String(error);
      return { ok: false, error: new ProvidersConfigError(path, [{ path: "(build)", message }]) };
    }
  }

  async function attempt(): Promise<ReloadResult> {
    const loaded = await load();
    if (!loaded.ok) {
      logger?.error(
        { path, issues: loaded.error.issues, version: current.version },
        "providers file rejected; keeping the current configuration",
      );
      return { ok: false, error: loaded.error };
    }
    if (loaded.source === currentSource) return { ok: true, version: current.version, changed: false };
    const previous = current;
    current = loaded.config;
    currentSource = loaded.source;
    logger?.info(
      {
        path,
        version: current.version,
        previousVersion: previous.version,
        priceVersion: current.priceVersion,
      },
      "providers file reloaded",
    );
    for (const listener of listeners) {
      try {
        listener(current, previous);
      } catch (error) {
        logger?.error({ path, error }, "a providers config listener failed");
      }
    }
    return { ok: true, version: current.version, changed: true };
  }

  function reload(): Promise<ReloadResult> {
    const run = queue.then(attempt);
    queue = run.catch(() => undefined);
    return run;
  }

  if (options.watch === true) {
    const fileName = basename(path);
    const debounceMs = options.watchDebounceMs ?? 200;
    watcher = watchDirectory(dirname(path), { persistent: false }, (_event, changed) => {
      // `..data` is the symlink Kubernetes swaps when a ConfigMap changes; a null name is "something changed".
      if (changed !== null && changed !== fileName && !changed.startsWith("..")) return;
      if (closed) return;
      clearTimeout(timer);
      timer = setTimeout(() => void reload(), debounceMs);
      timer.unref();
    });
    watcher.on("error", (error) => logger?.warn({ path, error }, "watching the providers file failed"));
  }

  return {
    current: () => current,
    reload,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close() {
      closed = true;
      clearTimeout(timer);
      watcher?.close();
    },
  };
}
