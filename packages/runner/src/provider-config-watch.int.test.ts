import { randomBytes } from "node:crypto";
import { createPrismaClient, type Database, ProviderConfigRepository } from "@genq/db";
import { createTestDatabase, type TestDatabase } from "@genq/db/testing";
import {
  buildRouterConfig,
  createLayeredConfigSource,
  defaultProvidersData,
  defaultProvidersFile,
  type LayeredConfigSource,
  validateMergedProviders,
} from "@genq/providers";
import { createRedisConnection, providerConfigChannel } from "@genq/queue";
import type { Redis } from "ioredis";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type ProviderConfigWatch, watchProviderConfig } from "./provider-config-watch.ts";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const WHO = { actor: "operator" };
const SETTINGS = { defaultProvider: "mock", mock: { latencyMs: 0 } };
const BASE = defaultProvidersData(SETTINGS);

/** Waits for `predicate`, polling every 20 ms; fails after `timeoutMs`. */
async function eventually(predicate: () => boolean, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (!predicate()) {
    if (Date.now() - started > timeoutMs) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return Date.now() - started;
}

describe("watchProviderConfig (real Redis and PostgreSQL)", () => {
  let database: TestDatabase;
  let db: Database;
  let repository: ProviderConfigRepository;
  let publisher: Redis;
  let subscriber: Redis;
  let source: LayeredConfigSource;
  let watch: ProviderConfigWatch | undefined;
  const prefix = `t${randomBytes(5).toString("hex")}`;
  const validate = (layer: Parameters<typeof validateMergedProviders>[1]) =>
    void validateMergedProviders(BASE, layer);

  beforeEach(async () => {
    database = await createTestDatabase();
    db = createPrismaClient({ connectionString: database.url, maxConnections: 3 });
    repository = new ProviderConfigRepository({ db });
    publisher = createRedisConnection({ url: REDIS_URL, role: "producer" });
    subscriber = createRedisConnection({ url: REDIS_URL, role: "subscriber" });
    source = await createLayeredConfigSource({
      loadBase: async () => ({ file: defaultProvidersFile(SETTINGS), data: BASE, source: "base" }),
      loadOverlay: () => repository.loadLayer("open"),
      build: (file, options) => buildRouterConfig(file, options),
    });
  });
  afterEach(async () => {
    await watch?.close();
    watch = undefined;
    publisher.disconnect();
    subscriber.disconnect();
    await db.$disconnect();
    await database.drop();
  });

  const addProvider = (name: string) =>
    repository.createProvider(WHO, { name, type: "mock", settings: { defaultModel: `${name}-1` } }, validate);

  it("applies an announced change at once, long before the next version check", async () => {
    watch = await watchProviderConfig({
      source,
      currentVersion: () => repository.currentVersion(),
      subscriber,
      channel: providerConfigChannel(prefix),
      intervalMs: 600_000,
      logger: pino({ level: "silent" }),
    });
    await addProvider("announced");
    await publisher.publish(providerConfigChannel(prefix), String(await repository.currentVersion()));
    await eventually(() => source.current().providers.has("announced"), 2_000);
    expect(source.overlayVersion()).toBe(1);
  });

  it("catches up with a change whose announcement it missed, by the version check", async () => {
    watch = await watchProviderConfig({
      source,
      currentVersion: () => repository.currentVersion(),
      subscriber,
      channel: providerConfigChannel(prefix),
      intervalMs: 200,
      logger: pino({ level: "silent" }),
    });
    const before = source.current();
    // Stored, but never announced (as if Redis dropped the message).
    await addProvider("missed");
    await eventually(() => source.current().providers.has("missed"), 3_000);
    // The config in force when the change arrived is left whole: a call that started on it keeps it.
    expect(before.providers.has("missed")).toBe(false);
    expect(source.current().version).not.toBe(before.version);
  });

  it("keeps the running configuration when a stored change does not merge on this worker", async () => {
    watch = await watchProviderConfig({
      source,
      currentVersion: () => repository.currentVersion(),
      subscriber,
      channel: providerConfigChannel(prefix),
      intervalMs: 100,
      logger: pino({ level: "silent" }),
    });
    // Validated against another base (as if the API saw another file), then broken on this worker.
    await repository.putRoute(WHO, { name: "elsewhere", targets: [{ provider: "not-here" }] }, () => {});
    await eventually(() => source.overlayVersion() === 1, 3_000);
    expect(source.current().routes.has("elsewhere")).toBe(false);
    expect([...source.current().providers.keys()]).toEqual(["mock"]);
  });
});
