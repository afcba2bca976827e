import { z } from "zod";
import { BooleanFromString } from "./env.ts";

/** Used in development when no signing secret is set; refused in production. */
export const DEVELOPMENT_SIGNING_SECRET = "genq-development-signing-secret-do-not-use-in-production";

/**
 * Object storage settings, read by the API (signed links, `/v1/assets`) and the
 * worker (uploads). Local disk is the default; S3, MinIO or R2 by configuration.
 */
export const StorageEnv = z.object({
  GENQ_STORAGE_DRIVER: z.enum(["local", "s3"]).default("local"),
  /** Local driver: where objects live. API and worker must share it (same host or volume). */
  GENQ_STORAGE_DIR: z.string().min(1).default(".genq/objects"),
  /** Local driver: HMAC secret of `/v1/assets` links (at least 32 characters; required in production). */
  GENQ_STORAGE_SIGNING_SECRET: z.string().min(32, "must be at least 32 characters").optional(),
  S3_BUCKET: z.string().min(1).optional(),
  S3_REGION: z.string().min(1).default("us-east-1"),
  /** For S3-compatible stores: MinIO `http://minio:9000`, R2 `https://<account>.r2.cloudflarestorage.com`. */
  S3_ENDPOINT: z.url().optional(),
  S3_FORCE_PATH_STYLE: BooleanFromString.default(false),
  /** Where clients open image links when that differs from S3_ENDPOINT (MinIO in Docker: `http://localhost:9000`). */
  S3_PUBLIC_ENDPOINT: z.url().optional(),
  S3_ACCESS_KEY_ID: z.string().min(1).optional(),
  S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  /** Create the bucket at start when it is missing. */
  S3_CREATE_BUCKET: BooleanFromString.default(false),
  /** Send checksums only where required (some S3-compatible stores reject the newer headers). */
  S3_CHECKSUM_WHEN_REQUIRED: BooleanFromString.default(false),
  /** Lifetime of the signed image links minted when a job is read. */
  GENQ_ASSET_URL_TTL_SECONDS: z.coerce.number().int().min(60).max(604_800).default(3_600),
  /** Generated images are deleted this many days after their job finished; 0 keeps them. */
  GENQ_ASSET_RETENTION_DAYS: z.coerce.number().int().min(0).max(36_500).default(30),
});
export type StorageEnv = z.infer<typeof StorageEnv>;

/** Cross-field rules of {@link StorageEnv}, for the apps' `superRefine`. */
export function checkStorageEnv(
  env: StorageEnv & { NODE_ENV: string },
  context: z.RefinementCtx,
  /** True for the API, which signs `/v1/assets` links; workers only write objects. */
  options: { signsLinks: boolean },
): void {
  if (env.GENQ_STORAGE_DRIVER === "s3" && env.S3_BUCKET === undefined) {
    context.addIssue({
      code: "custom",
      path: ["S3_BUCKET"],
      message: "is required when GENQ_STORAGE_DRIVER=s3",
    });
  }
  if ((env.S3_ACCESS_KEY_ID === undefined) !== (env.S3_SECRET_ACCESS_KEY === undefined)) {
    context.addIssue({
      code: "custom",
      path: [env.S3_ACCESS_KEY_ID === undefined ? "S3_ACCESS_KEY_ID" : "S3_SECRET_ACCESS_KEY"],
      message:
        "give both S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY, or neither (the SDK's default credentials)",
    });
  }
  if (
    options.signsLinks &&
    env.NODE_ENV === "production" &&
    env.GENQ_STORAGE_DRIVER === "local" &&
    env.GENQ_STORAGE_SIGNING_SECRET === undefined
  ) {
    context.addIssue({
      code: "custom",
      path: ["GENQ_STORAGE_SIGNING_SECRET"],
      message: "is required in production with the local storage driver (it signs /v1/assets links)",
    });
  }
}
