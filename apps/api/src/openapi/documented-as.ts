import { z } from "zod";

/** The metadata key {@link documentedAs} leaves for `finishDocument`. */
export const DOCUMENTED_AS = "x-genq-documented-as";

/**
 * A value the API echoes as stored (a job's input, metadata or result), checked at
 * runtime as `unknown` so an older row can never make a read fail, and described in
 * the document as the named component `id` (registered with `.meta({ id })`), as a
 * request reads it (`io: "input"`: defaults optional) or as a response does. The e2e
 * contract check holds the real responses to that description.
 */
export function documentedAs(id: string, io: "input" | "output" = "output"): z.ZodUnknown {
  return z.unknown().meta({ [DOCUMENTED_AS]: io === "input" ? `${id}Input` : id });
}
