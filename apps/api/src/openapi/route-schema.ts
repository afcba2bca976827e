import type { z } from "zod";

/** A response a route writes itself (a stream, a file), described for the document only. */
export interface DocumentedResponse {
  description: string;
  /** By media type: a zod schema (of each line of JSONL, of each SSE event's `data`) or a JSON Schema. */
  content: Record<string, z.ZodType | Record<string, unknown>>;
  /** By header name: a JSON Schema with a `description`. */
  headers?: Record<string, { description: string } & Record<string, unknown>>;
}

declare module "fastify" {
  interface FastifySchema {
    /** The description of a response by status; errors and plain successes get a default. */
    responseDescriptions?: Partial<Record<number, string>>;
    /**
     * A request body the route parses itself (JSONL, multipart), by media type, for the
     * document only: Fastify does not validate it (a `body` schema would).
     */
    documentedBody?: { description?: string; content: Record<string, z.ZodType | Record<string, unknown>> };
    /** Headers a JSON response carries (e.g. `Preference-Applied`), by status then name. */
    responseHeaders?: Partial<Record<number, DocumentedResponse["headers"]>>;
    /** Responses the route writes itself (SSE, JSONL, files), for the document only. */
    documentedResponses?: Partial<Record<number, DocumentedResponse>>;
  }
}
