#!/usr/bin/env node
// The `genq` command of @genq/client: the compiled CLI (built by `pnpm build`, shipped in the package).
import "../dist/cli/main.js";
