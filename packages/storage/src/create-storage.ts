import { createLocalStorage, type LocalStorage, type LocalStorageOptions } from "./local-storage.ts";
import type { ObjectStorage } from "./object-storage.ts";
import { createS3Storage, type S3Storage, type S3StorageOptions } from "./s3-storage.ts";

/** Configuration of the local-disk driver for {@link createStorage}. */
export type LocalStorageConfig = { driver: "local" } & LocalStorageOptions;
/** Configuration of the S3 driver for {@link createStorage}. */
export type S3StorageConfig = { driver: "s3" } & S3StorageOptions;
/** Which driver to use and its options; apps build this from their environment. */
export type StorageConfig = LocalStorageConfig | S3StorageConfig;

/** Creates the driver `config.driver` names. */
export function createStorage(config: LocalStorageConfig): LocalStorage;
export function createStorage(config: S3StorageConfig): S3Storage;
export function createStorage(config: StorageConfig): LocalStorage | S3Storage;
export function createStorage(config: StorageConfig): ObjectStorage {
  switch (config.driver) {
    case "local": {
      const { driver: _driver, ...options } = config;
      return createLocalStorage(options);
    }
    case "s3": {
      const { driver: _driver, ...options } = config;
      return createS3Storage(options);
    }
    default: {
      const unknown: never = config;
      throw new TypeError(
        `Unknown storage driver ${JSON.stringify((unknown as { driver?: unknown }).driver)}`,
      );
    }
  }
}
