import { EnvError } from "@genq/core";
import { describe, expect, it } from "vitest";
import { loadApiEnv } from "./env.ts";

describe("loadApiEnv", () => {
  it("runs on defaults with nothing configured", () => {
    const env = loadApiEnv({});
    expect(env).toMatchObject({
      PORT: 3000,
      HOST: "127.0.0.1",
      DATABASE_URL: "postgresql://postgres@127.0.0.1:5432/genq",
      REDIS_URL: "redis://127.0.0.1:6379",
      GENQ_ADMIN_USER: "admin",
    });
    expect(env.GENQ_ADMIN_PASSWORD).toBeUndefined();
  });

  it("refuses to start in production without operator credentials, naming the variable", () => {
    expect(() => loadApiEnv({ NODE_ENV: "production" })).toThrow(
      /GENQ_ADMIN_PASSWORD: is required when NODE_ENV=production/,
    );
    expect(
      loadApiEnv({
        NODE_ENV: "production",
        GENQ_ADMIN_PASSWORD: "a-long-enough-secret",
        GENQ_STORAGE_SIGNING_SECRET: "s".repeat(32),
      }).NODE_ENV,
    ).toBe("production");
  });

  it("requires a signing secret for local image links in production, and a bucket for S3", () => {
    expect(() => loadApiEnv({ NODE_ENV: "production", GENQ_ADMIN_PASSWORD: "a-long-enough-secret" })).toThrow(
      /GENQ_STORAGE_SIGNING_SECRET: is required in production/,
    );
    expect(() => loadApiEnv({ GENQ_STORAGE_DRIVER: "s3" })).toThrow(/S3_BUCKET: is required/);
    expect(() => loadApiEnv({ GENQ_STORAGE_DRIVER: "s3", S3_BUCKET: "b", S3_ACCESS_KEY_ID: "k" })).toThrow(
      /S3_SECRET_ACCESS_KEY: give both/,
    );
  });

  it("names every bad variable at once", () => {
    let error: unknown;
    try {
      loadApiEnv({ PORT: "http", REDIS_URL: "localhost:6379", DATABASE_URL: "mysql://x/y" });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(EnvError);
    const message = (error as Error).message;
    expect(message).toMatch(/PORT:/);
    expect(message).toMatch(/REDIS_URL: must be a redis:\/\/ or rediss:\/\/ URL/);
    expect(message).toMatch(/DATABASE_URL: must be a postgresql:\/\/ URL/);
  });

  it("treats an empty variable as unset", () => {
    expect(loadApiEnv({ PORT: "" }).PORT).toBe(3000);
  });
});
