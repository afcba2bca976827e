import { writeFile } from "node:fs/promises";
import { Session } from "node:inspector/promises";

/** A V8 CPU profile (`.cpuprofile`), as the inspector returns it. */
interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  samples: number[];
  timeDeltas: number[];
}

/** Where sampled time went: by package (or genq source file), and by function. */
export interface ProfileSummary {
  /** Sampled milliseconds in total, idle included. */
  totalMs: number;
  /** Milliseconds the process was idle (waiting on I/O). */
  idleMs: number;
  byPackage: Array<{ where: string; ms: number; share: number }>;
  byFunction: Array<{ where: string; ms: number; share: number }>;
}

/**
 * Profiles this process with the inspector (the same sampler as `node --cpu-prof`)
 * between `start` and `stop`, so a benchmark can profile only its measured phase.
 */
export async function startCpuProfile(): Promise<{ stop(file: string): Promise<ProfileSummary> }> {
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 500 });
  await session.post("Profiler.start");
  return {
    async stop(file) {
      const { profile } = (await session.post("Profiler.stop")) as { profile: CpuProfile };
      session.disconnect();
      await writeFile(file, JSON.stringify(profile));
      return summarize(profile);
    },
  };
}

/** The package a script belongs to (pnpm's store layout), or its path inside the repository. */
function owner(url: string): string {
  if (url === "") return "(native, gc, idle)";
  const stored = /node_modules\/\.pnpm\/([^/]+)\//.exec(url);
  if (stored?.[1] !== undefined) return stored[1].replace(/@[0-9][^/]*$/, "").replace("+", "/");
  const local = /\/(apps|packages|bench|tests)\/(.*)$/.exec(url);
  if (local !== null) return `${local[1]}/${local[2]}`;
  return url;
}

function summarize(profile: CpuProfile): ProfileSummary {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfMicros = new Map<number, number>();
  profile.samples.forEach((id, index) => {
    selfMicros.set(id, (selfMicros.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0));
  });
  const byPackage = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, micros] of selfMicros) {
    const frame = nodes.get(id)?.callFrame;
    if (frame === undefined) continue;
    total += micros;
    if (frame.functionName === "(idle)") {
      idle += micros;
      continue;
    }
    const where = owner(frame.url);
    byPackage.set(where, (byPackage.get(where) ?? 0) + micros);
    const name = `${frame.functionName || "(anonymous)"} ${where}:${frame.lineNumber + 1}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + micros);
  }
  const busy = total - idle;
  const top = (map: Map<string, number>) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 15)
      .map(([where, micros]) => ({
        where,
        ms: Math.round(micros / 1_000),
        share: Math.round((1_000 * micros) / Math.max(1, busy)) / 10,
      }));
  return {
    totalMs: Math.round(total / 1_000),
    idleMs: Math.round(idle / 1_000),
    byPackage: top(byPackage),
    byFunction: top(byFunction),
  };
}
