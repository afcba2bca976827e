// Prisma CLI configuration. `env("DATABASE_URL")` would throw when the variable is
// unset, even for `prisma generate`, so the URL is read leniently here.
import { defineConfig } from "prisma/config";

export default defineConfig({
  schema: "prisma/schema.prisma",
  migrations: { path: "prisma/migrations" },
  datasource: { url: process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres" },
});
