import { GenqError, isId, JobStatus, JobType, PRIORITIES, PRIORITY_NAMES } from "@genq/core";
import type { JobSearchFilter } from "@genq/db";
import { z } from "zod";
import { decodeCursor } from "./routes/page-cursor.ts";

/** The most `metadata` pairs one search takes. */
const MAX_METADATA_PAIRS = 10;

const MetadataPair = z
  .string()
  .min(3)
  .max(500)
  .regex(/^[^:]+:.*$/, "metadata: `key:value`, e.g. `customer:acme`");

/**
 * The job search filters of `GET /v1/jobs` and `GET /v1/admin/jobs`, as a querystring.
 * `metadata` repeats (`?metadata=customer:acme&metadata=env:prod`): every pair must be a
 * top-level key of the job's metadata holding that value (`tier:3` matches 3 and "3").
 */
export const JobSearchParams = z.object({
  status: JobStatus.optional(),
  type: JobType.optional(),
  provider: z.string().min(1).max(200).optional().describe("Asked for, run on, or called by an attempt"),
  model: z.string().min(1).max(200).optional(),
  errorCode: z.string().min(1).max(100).optional().describe("The job's (last) error code"),
  batchId: z.string().max(64).optional(),
  priority: z.enum(PRIORITY_NAMES).optional(),
  from: z.iso.datetime({ offset: true }).optional().describe("Created at or after"),
  to: z.iso.datetime({ offset: true }).optional().describe("Created before"),
  metadata: z
    .union([MetadataPair, z.array(MetadataPair).max(MAX_METADATA_PAIRS)])
    .optional()
    .describe(
      "`key:value`, repeatable: jobs whose metadata has every such key with that value; a value that reads as a JSON number, boolean or null (`tier:3`, `vip:true`) matches that value and the string",
    ),
  cursor: z.string().max(64).optional().describe("`nextCursor` of the previous page"),
  limit: z.coerce.number().int().min(1).max(100).default(20),
});
export type JobSearchParams = z.infer<typeof JobSearchParams>;

/** The repository filter of validated search params (the cursor decoded; a bad batch id is a 400). */
export function toJobSearchFilter(params: Omit<JobSearchParams, "cursor" | "limit">): JobSearchFilter {
  if (params.batchId !== undefined && !isId(params.batchId)) {
    throw new GenqError("invalid_request", "querystring.batchId: not a batch id", {
      details: { location: "querystring", field: "batchId" },
    });
  }
  if (params.from !== undefined && params.to !== undefined && new Date(params.from) >= new Date(params.to)) {
    throw new GenqError("invalid_request", "querystring.from: must be before `to`", {
      details: { location: "querystring", field: "from" },
    });
  }
  const pairs = params.metadata === undefined ? [] : [params.metadata].flat();
  const metadata: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf(":");
    metadata[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return {
    status: params.status,
    type: params.type,
    provider: params.provider,
    model: params.model,
    errorCode: params.errorCode,
    batchId: params.batchId,
    priority: params.priority === undefined ? undefined : PRIORITIES[params.priority],
    createdFrom: params.from === undefined ? undefined : new Date(params.from),
    createdTo: params.to === undefined ? undefined : new Date(params.to),
    metadata: pairs.length === 0 ? undefined : metadata,
  };
}

/** The decoded cursor of search params, if any. */
export function searchCursor(params: Pick<JobSearchParams, "cursor">): string | undefined {
  return params.cursor === undefined ? undefined : decodeCursor(params.cursor);
}
