/**
 * Test helpers for packages that use the database: `@genq/db/testing`.
 * Not for production code; nothing here is exported from `@genq/db` itself.
 */
export { withSchemaUrl } from "./schema-url.ts";
export { type CreateTestDatabaseOptions, createTestDatabase, type TestDatabase } from "./test-database.ts";
