import { CreateBatchRequest, MAX_BATCH_ITEMS } from "@genq/core";
import { z } from "zod";
import { documentedAs } from "./documented-as.ts";

/**
 * `POST /v1/batches` as JSON, for the document: the route reads the body itself and
 * checks each item on its own (a bad item is listed, the rest run), so its runtime
 * schema keeps items `unknown`.
 */
export const CreateBatchRequestDocument = CreateBatchRequest.extend({
  items: z
    .array(documentedAs("AnyJobInput", "input"))
    .min(1)
    .max(MAX_BATCH_ITEMS)
    .describe("The items, each a `TextJobInput` or an `ImageJobInput` as `type` says"),
}).meta({
  id: "CreateBatchRequest",
  examples: [
    {
      type: "text",
      priority: "low",
      items: [{ prompt: "Summarize: queues are lines" }, { prompt: "Translate to French: good morning" }],
      metadata: { run: "nightly-7" },
    },
  ],
});

/** One line of a JSONL batch body: one item (the options go in the query string). */
export const BatchItemLine = documentedAs("AnyJobInput", "input");
