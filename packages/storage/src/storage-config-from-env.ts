import { resolve } from "node:path";
import { DEVELOPMENT_SIGNING_SECRET, type StorageEnv } from "@genq/core";
import type { StorageConfig } from "./create-storage.ts";

/**
 * The storage configuration the apps' validated environment describes.
 * `publicBaseUrl` is where the API serves local objects (`<GENQ_PUBLIC_URL>/v1/assets`).
 */
export function storageConfigFromEnv(env: StorageEnv, options: { publicBaseUrl: string }): StorageConfig {
  if (env.GENQ_STORAGE_DRIVER === "s3") {
    if (env.S3_BUCKET === undefined) throw new TypeError("S3_BUCKET is required with the s3 driver");
    return {
      driver: "s3",
      bucket: env.S3_BUCKET,
      region: env.S3_REGION,
      ...(env.S3_ENDPOINT === undefined ? {} : { endpoint: env.S3_ENDPOINT }),
      forcePathStyle: env.S3_FORCE_PATH_STYLE,
      ...(env.S3_PUBLIC_ENDPOINT === undefined ? {} : { publicEndpoint: env.S3_PUBLIC_ENDPOINT }),
      ...(env.S3_ACCESS_KEY_ID === undefined ? {} : { accessKeyId: env.S3_ACCESS_KEY_ID }),
      ...(env.S3_SECRET_ACCESS_KEY === undefined ? {} : { secretAccessKey: env.S3_SECRET_ACCESS_KEY }),
      createBucket: env.S3_CREATE_BUCKET,
      checksumWhenRequired: env.S3_CHECKSUM_WHEN_REQUIRED,
    };
  }
  return {
    driver: "local",
    directory: resolve(env.GENQ_STORAGE_DIR),
    signingSecret: env.GENQ_STORAGE_SIGNING_SECRET ?? DEVELOPMENT_SIGNING_SECRET,
    publicBaseUrl: options.publicBaseUrl,
  };
}
