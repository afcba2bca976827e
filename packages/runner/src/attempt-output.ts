import { GenqError } from "@genq/core";
import type { JobCompletion } from "@genq/db";

/** What a successful run of a text or image job produced, before it is recorded. */
export type AttemptOutput = Omit<JobCompletion, "jobId" | "attempt" | "charge"> & {
  /** Served from the result cache: no provider call, no charge. */
  cacheHit?: boolean;
};

/** A job's stored input, parsed; a row that no longer parses fails the job as `invalid_request`. */
export function parseStoredInput<T>(
  schema: {
    safeParse(
      value: unknown,
    ): { success: true; data: T } | { success: false; error: { issues: Array<{ message: string }> } };
  },
  value: unknown,
): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new GenqError(
      "invalid_request",
      `stored input is invalid: ${parsed.error.issues[0]?.message ?? "unknown"}`,
    );
  }
  return parsed.data;
}

/** Span attributes of a routed call: who answered, after how many calls. */
export function callAttributes(routed: { provider: string; model: string; calls: readonly unknown[] }) {
  return {
    "genq.provider": routed.provider,
    "genq.model": routed.model,
    "genq.provider.calls": routed.calls.length,
  };
}
