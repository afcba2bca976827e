#!/usr/bin/env node
// genq-admin, the operator CLI (`pnpm genq-admin ...`). genq runs its TypeScript without a
// build step (docs/decisions/0001), so the loader comes first.
import { register } from "tsx/esm/api";

register();
await import("../src/main.ts");
