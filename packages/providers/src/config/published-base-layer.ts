import type { Redis } from "ioredis";
import { maskProviderSecrets } from "./provider-layers.ts";

function baseLayerKey(prefix: string): string {
  return `${prefix}:router:base-layer`;
}

/**
 * Publishes the workers' base layer (the providers file as written, or the
 * environment's) with every secret masked, so the API, which holds neither the
 * file nor its keys, validates a database change against the same merge the
 * workers will make (decision 0023).
 */
export async function publishProviderBaseLayer(
  redis: Redis,
  prefix: string,
  data: Record<string, unknown>,
): Promise<void> {
  await redis.set(baseLayerKey(prefix), JSON.stringify(maskProviderSecrets(data)));
}

/** The last published base layer (secrets masked), or undefined when no worker has published one. */
export async function readProviderBaseLayer(
  redis: Redis,
  prefix: string,
): Promise<Record<string, unknown> | undefined> {
  const text = await redis.get(baseLayerKey(prefix));
  return text === null ? undefined : (JSON.parse(text) as Record<string, unknown>);
}
