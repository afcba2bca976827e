import { ERROR_CODES } from "@genq/core";
import { z } from "zod";

/** The body of every error response, for the OpenAPI document. */
export const ErrorResponse = z
  .object({
    error: z.object({
      code: z.enum(ERROR_CODES),
      message: z.string(),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
  })
  .meta({ id: "Error" });
