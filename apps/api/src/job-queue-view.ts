import type { QueuePosition } from "@genq/queue";
import { z } from "zod";

/** Where a queued job stands, as `GET /v1/jobs/:id` shows it. */
export const JobQueueView = z
  .object({
    state: z
      .enum(["waiting", "delayed", "held"])
      .describe(
        "`waiting`: in line; `delayed`: set aside until a time (a retry's backoff, every provider rate limited, " +
          "its owner at its concurrency cap); `held`: not in line yet (a batch item the fair dispatcher has not released)",
      ),
    position: z
      .number()
      .int()
      .nullable()
      .describe("1 means next; an estimate (see docs/api.md). Null unless `waiting`"),
    ahead: z
      .number()
      .int()
      .nullable()
      .describe("Jobs of the same type handed out before it; null unless `waiting`"),
    etaSeconds: z
      .number()
      .int()
      .nullable()
      .describe(
        "Estimated seconds until a worker starts it, from the jobs ahead and how many finished in the last minute; " +
          "for a delayed job, until it is back in line. Null when there is no recent throughput to go by",
      ),
  })
  .meta({
    id: "JobQueuePosition",
    examples: [{ state: "waiting", position: 12, ahead: 11, etaSeconds: 4 }],
  });
export type JobQueueView = z.infer<typeof JobQueueView>;

/** Builds the view of a queued job's position. */
export function toJobQueueView(position: QueuePosition): JobQueueView {
  switch (position.state) {
    case "waiting":
      return {
        state: "waiting",
        position: position.ahead + 1,
        ahead: position.ahead,
        etaSeconds: position.etaSeconds ?? null,
      };
    case "delayed":
      return { state: "delayed", position: null, ahead: null, etaSeconds: position.etaSeconds };
    case "held":
      return { state: "held", position: null, ahead: null, etaSeconds: null };
  }
}
