import { mkdir, writeFile } from "node:fs/promises";
import { arch, cpus, platform } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { benchQuotaOverhead } from "./quota-overhead.ts";
import { benchRouterOverhead } from "./router-overhead.ts";

/**
 * `pnpm bench`: every figure is printed next to its baseline, measured in the
 * same run on the same services, and the run is saved to bench/results/<date>.json.
 * Goals are reported, never asserted.
 */
async function main(): Promise<void> {
  const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  const calls = Number(process.env.GENQ_BENCH_CALLS ?? 3_000);

  const databaseUrl = process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";
  const router = await benchRouterOverhead({ redisUrl, calls });
  const quota = await benchQuotaOverhead({ databaseUrl, jobs: calls });
  const rows = [
    [
      "P3 router overhead",
      "p50",
      router.direct.p50,
      router.routed.p50,
      router.overhead.p50,
      `≤ ${router.goal.p50}`,
    ],
    [
      "P3 router overhead",
      "p99",
      router.direct.p99,
      router.routed.p99,
      router.overhead.p99,
      `≤ ${router.goal.p99}`,
    ],
  ];
  process.stdout.write(`\nrouter overhead, ${calls} calls each (ms)\n`);
  process.stdout.write(`${["benchmark", "figure", "direct SDK", "routed", "overhead", "goal"].join("\t")}\n`);
  for (const row of rows) process.stdout.write(`${row.join("\t")}\n`);
  process.stdout.write(`\nquota reserve+settle, ${calls} jobs (ms)\n`);
  process.stdout.write(
    `${["benchmark", "figure", "baseline (2× SELECT 1)", "reserve+settle", "ratio", "goal"].join("\t")}\n`,
  );
  for (const figure of ["p50", "p99"] as const) {
    const ratio = quota.reserveSettle[figure] / quota.baseline[figure];
    process.stdout.write(
      `${["P6 quota overhead", figure, quota.baseline[figure], quota.reserveSettle[figure], `${ratio.toFixed(2)}×`, figure === "p99" ? "≤ 1" : ""].join("\t")}\n`,
    );
  }

  const results = {
    date: new Date().toISOString(),
    machine: {
      node: process.version,
      platform: platform(),
      arch: arch(),
      cpus: cpus().length,
      cpu: cpus()[0]?.model,
    },
    benchmarks: [router, quota],
  };
  const directory = join(dirname(fileURLToPath(import.meta.url)), "..", "results");
  await mkdir(directory, { recursive: true });
  const file = join(directory, `${results.date.slice(0, 10)}.json`);
  await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`\nsaved ${file}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
