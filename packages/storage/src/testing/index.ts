/**
 * Test helpers for packages that store objects: an S3-compatible server to run
 * integration tests against. Not for production code.
 */
export * from "./start-s3rver.ts";
