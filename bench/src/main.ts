import { mkdir, writeFile } from "node:fs/promises";
import { arch, cpus, platform } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { benchBatchAcceptance } from "./batch-acceptance.ts";
import { benchEndToEnd } from "./end-to-end-throughput.ts";
import { benchJobSearch } from "./job-search.ts";
import { benchQuotaOverhead } from "./quota-overhead.ts";
import { benchRouterOverhead } from "./router-overhead.ts";
import { benchSubmitApi } from "./submit-api.ts";
import { benchWorkerCost } from "./worker-cost.ts";
import { benchIoEfficiency, benchScaleOut } from "./worker-scaling.ts";

/** One benchmark: its id for `GENQ_BENCH_ONLY`, and a run that prints its figures and returns them. */
interface Benchmark {
  id: string;
  run(): Promise<unknown>;
}

/**
 * `pnpm bench`: every figure is printed next to its baseline, measured in the
 * same run on the same services, and the run is saved to bench/results/<date>.json.
 * Goals are reported, never asserted.
 */
async function main(): Promise<void> {
  const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  const calls = Number(process.env.GENQ_BENCH_CALLS ?? 3_000);
  const databaseUrl = process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";
  const write = (line: string) => process.stdout.write(`${line}\n`);

  const all: Benchmark[] = [
    {
      id: "p6",
      async run() {
        const cost = await benchWorkerCost({
          redisUrl,
          databaseUrl,
          jobs: Number(process.env.GENQ_BENCH_COST_JOBS ?? 2_000),
        });
        write(
          `\nP6 worker cost per job, ${cost.jobs} text jobs drained at concurrency ${cost.concurrency}, zero-latency mock`,
        );
        write(
          [
            "system",
            "CPU ms",
            "SQL round trips",
            "transactions",
            "Redis commands",
            "jobs/s",
            "top Redis commands",
          ].join("\t"),
        );
        for (const [name, figure] of [
          ["genq worker", cost.genq],
          ["raw BullMQ, empty processor", cost.baseline],
        ] as const) {
          write(
            [
              name,
              figure.cpuMsPerJob,
              figure.sqlRoundTripsPerJob,
              figure.transactionsPerJob,
              figure.redisCommandsPerJob,
              figure.jobsPerSecond,
              figure.topRedisCommands.join(", "),
            ].join("\t"),
          );
        }
        write(`genq worker SQL statements per job: ${cost.genq.topStatements.join(", ")}`);
        write(
          `goal: CPU ≤ ${cost.goal.cpuMsPerJob} ms, SQL round trips ≤ ${cost.goal.sqlRoundTripsPerJob} per job`,
        );
        if (cost.profile !== undefined) {
          const { profile } = cost;
          write(
            `\nP6 CPU profile of the drain (${profile.totalMs - profile.idleMs} ms busy of ${profile.totalMs} ms; ${profile.file})`,
          );
          for (const entry of profile.byPackage) write(`${entry.share}%\t${entry.ms} ms\t${entry.where}`);
          write("top functions (self time):");
          for (const entry of profile.byFunction) write(`${entry.share}%\t${entry.ms} ms\t${entry.where}`);
        }
        return cost;
      },
    },
    {
      id: "p3",
      async run() {
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
        process.stdout.write(
          `${["benchmark", "figure", "direct SDK", "routed", "overhead", "goal"].join("\t")}\n`,
        );
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
        return [router, quota];
      },
    },
    {
      id: "p1",
      async run() {
        const endToEnd = await benchEndToEnd({
          redisUrl,
          databaseUrl,
          jobs: Number(process.env.GENQ_BENCH_JOBS ?? 2_000),
        });
        process.stdout.write(`\nP1 end to end, ${endToEnd.jobs} jobs (jobs/s)\n`);
        process.stdout.write(
          `genq ${endToEnd.genqJobsPerSecond}\traw BullMQ ${endToEnd.baselineJobsPerSecond}\tratio ${endToEnd.ratio}\tgoal ≥ ${endToEnd.goal}\n`,
        );
        process.stdout.write(
          `bare HTTP route + BullMQ ${endToEnd.httpBaselineJobsPerSecond}\tratio ${endToEnd.httpRatio}\n`,
        );
        return endToEnd;
      },
    },
    {
      id: "p2",
      async run() {
        const submit = await benchSubmitApi({
          redisUrl,
          databaseUrl,
          durationSeconds: Number(process.env.GENQ_BENCH_SECONDS ?? 5),
        });
        process.stdout.write(`\nP2 submit API, best req/s with p99 ≤ ${submit.latencyLimitMs} ms\n`);
        for (const [name, figure] of [
          ["genq POST /v1/jobs", submit.genq],
          ["bare Fastify + queue.add", submit.baseline],
        ] as const) {
          process.stdout.write(
            `${name}\t${figure.requestsPerSecond} req/s at ${figure.connections} connections, p50 ${figure.p50} ms, p99 ${figure.p99} ms${figure.withinLatencyLimit ? "" : " (p99 limit never met)"}\n`,
          );
        }
        process.stdout.write(`ratio ${submit.ratio}\tgoal ≥ ${submit.goal}\n`);
        return submit;
      },
    },
    {
      id: "p4",
      async run() {
        const io = await benchIoEfficiency({
          redisUrl,
          databaseUrl,
          concurrency: Number(process.env.GENQ_BENCH_IO_CONCURRENCY ?? 1_000),
        });
        process.stdout.write(
          `\nP4 I/O efficiency, one worker process, concurrency ${io.concurrency}, provider latency ${io.providerLatencyMs} ms, ${io.jobs} jobs\n`,
        );
        process.stdout.write(
          `genq ${io.jobsPerSecond} jobs/s\traw BullMQ, a processor that waits: ${io.bullmqJobsPerSecond} jobs/s\tratio ${io.bullmqRatio}\tgoal ≥ ${io.goal.ratio}\t(ideal ${io.idealJobsPerSecond}: ratio ${io.ratio})\n`,
        );
        process.stdout.write(
          `RSS idle ${io.idleRssMb} MB, peak ${io.peakRssMb} MB: ${io.rssPerInFlightJobKb} KB per in-flight job\tgoal ≤ ${io.goal.rssPerInFlightJobKb} KB\n`,
        );
        return io;
      },
    },
    {
      id: "s1",
      async run() {
        const scaleOut = await benchScaleOut({ redisUrl, databaseUrl, latencyMs: 1_000 });
        process.stdout.write(
          `\nscale-out, provider latency ${scaleOut.providerLatencyMs} ms, concurrency ${scaleOut.concurrencyPerProcess} per process\n`,
        );
        for (const run of scaleOut.runs) {
          process.stdout.write(
            `${run.processes} worker process(es)\t${run.jobsPerSecond} jobs/s\tspeedup ${run.speedup}\tefficiency ${run.efficiency}\n`,
          );
        }
        process.stdout.write(`goal: 4 processes ≥ ${scaleOut.goal.speedup4}× one\n`);
        return scaleOut;
      },
    },
    {
      id: "p5",
      async run() {
        const batch = await benchBatchAcceptance({ redisUrl, databaseUrl });
        process.stdout.write("\nP5 batches\n");
        process.stdout.write(
          `accept ${batch.accept10k.runs}× 10,000 items (JSON), median\t${batch.accept10k.genqMs} ms\tbaseline (one multi-row INSERT, no HTTP) ${batch.accept10k.baselineMs} ms\tgoal ≤ ${batch.accept10k.goalMs} ms\n`,
        );
        process.stdout.write(
          `release ${batch.enqueue.items} items to BullMQ (claim + addBulk, no cap)\t${batch.enqueue.genqPerSecond} items/s\tbaseline (raw addBulk) ${batch.enqueue.baselinePerSecond}/s\tgoal ≥ ${batch.enqueue.goalPerSecond}/s\n`,
        );
        process.stdout.write(
          `API peak RSS, JSONL ${batch.memory.items} items\t${batch.memory.peakMiB} MiB (+${batch.memory.growthMiB}, ${batch.memory.acceptMs} ms)\tbaseline ${batch.memory.baselineItems} items ${batch.memory.baselinePeakMiB} MiB\tratio ${batch.memory.ratio}\t(one JSON body: ${batch.memory.jsonBodyPeakMiB} MiB; retained after GC: ${batch.memory.retainedMiB.baseline} / ${batch.memory.retainedMiB.items} MiB)\n`,
        );
        return batch;
      },
    },
    {
      id: "q1",
      async run() {
        const result = await benchJobSearch({
          databaseUrl,
          jobs: Number(process.env.GENQ_BENCH_SEARCH_JOBS ?? 1_000_000),
          runs: Number(process.env.GENQ_BENCH_SEARCH_RUNS ?? 200),
        });
        write(
          `\nQ1 job search, ${result.jobs} jobs of ${result.users} users (loaded in ${result.loadSeconds} s), ${result.runsPerShape} runs per shape, one page of 20`,
        );
        write(`baseline SELECT 1\tp50 ${result.baseline.p50} ms\tp95 ${result.baseline.p95} ms`);
        for (const figure of result.searches) {
          write(
            `${figure.name}\tp50 ${figure.p50} ms\tp95 ${figure.p95} ms\tin Postgres p50 ${figure.serverP50} ms, p95 ${figure.serverP95} ms\t${figure.rows} rows`,
          );
        }
        write(`goal: p95 < ${result.goal.p95Ms} ms`);
        return result;
      },
    },
  ];
  // GENQ_BENCH_ONLY=p6,p1 runs just those (ids: p1, p2, p3 (router and quota), p4, p5, p6, s1, q1).
  const only = process.env.GENQ_BENCH_ONLY?.split(",").map((id) => id.trim().toLowerCase());
  const benchmarks: unknown[] = [];
  for (const benchmark of all) {
    if (only !== undefined && !only.includes(benchmark.id)) continue;
    benchmarks.push(await benchmark.run());
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
    benchmarks: benchmarks.flat(),
  };
  const directory = join(dirname(fileURLToPath(import.meta.url)), "..", "results");
  await mkdir(directory, { recursive: true });
  const file = join(
    directory,
    `${results.date.slice(0, 10)}${only === undefined ? "" : `-${only.join("-")}`}.json`,
  );
  await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`\nsaved ${file}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
