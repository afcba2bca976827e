import type { Logger } from "@genq/core";
import type { LayeredConfigSource } from "@genq/providers";
import type { Redis } from "ioredis";

/** Options for {@link watchProviderConfig}. */
export interface ProviderConfigWatchOptions {
  source: LayeredConfigSource;
  /** Reads the database's configuration version (one indexed row). */
  currentVersion: () => Promise<number>;
  /** A connection in subscriber mode, owned by the caller. */
  subscriber: Redis;
  channel: string;
  /** How often the version is checked, for a worker that missed a message. @defaultValue 5000 */
  intervalMs?: number;
  logger: Logger;
}

/** A running watch; `close` stops the timer and the subscription. */
export interface ProviderConfigWatch {
  /** Checks the version now; resolves when a newer layer (if any) has been applied or refused. */
  check(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Keeps a worker's configuration on the database's latest version (decision
 * 0023): a message on the channel triggers a reload at once; a version check
 * every `intervalMs` catches a message that was missed (a Redis blip, a worker
 * that started mid-change). Reloads swap the config as SIGHUP does: calls in
 * flight finish on the config they started with.
 */
export async function watchProviderConfig(options: ProviderConfigWatchOptions): Promise<ProviderConfigWatch> {
  const { source, logger } = options;
  let checking: Promise<void> | undefined;
  // A message that arrives while a check runs asks for one more: that check may have read the older version.
  let again = false;

  async function checkOnce(): Promise<void> {
    try {
      const version = await options.currentVersion();
      if (version > source.overlayVersion()) await source.reloadOverlay();
    } catch (error) {
      logger.warn({ err: error }, "could not check the provider configuration version");
    }
  }

  function check(): Promise<void> {
    if (checking !== undefined) {
      again = true;
      return checking;
    }
    checking = (async () => {
      do {
        again = false;
        await checkOnce();
      } while (again);
      checking = undefined;
    })();
    return checking;
  }

  const onMessage = (channel: string, message: string) => {
    if (channel !== options.channel) return;
    const version = Number(message);
    if (!Number.isFinite(version) || version > source.overlayVersion()) void check();
  };
  options.subscriber.on("message", onMessage);
  await options.subscriber.subscribe(options.channel);
  const timer = setInterval(() => void check(), options.intervalMs ?? 5_000);
  timer.unref();
  await check();
  return {
    check,
    async close() {
      clearInterval(timer);
      options.subscriber.off("message", onMessage);
      await options.subscriber.unsubscribe(options.channel).catch(() => {});
      await checking;
    },
  };
}
