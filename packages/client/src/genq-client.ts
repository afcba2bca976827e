import { type ClientOptions, HttpClient } from "./http-client.ts";
import { BatchesResource } from "./resources/batches.ts";
import { EventsResource } from "./resources/events.ts";
import { JobsResource } from "./resources/jobs.ts";
import { UploadsResource } from "./resources/uploads.ts";
import { UsageResource } from "./resources/usage.ts";
import { WebhooksResource } from "./resources/webhooks.ts";

/**
 * The genq API client.
 *
 * ```ts
 * const genq = new GenqClient({ baseUrl: "https://genq.example.com", apiKey: process.env.GENQ_API_KEY! });
 * const job = await genq.jobs.create({ type: "text", input: { prompt: "Hello" } });
 * const done = await genq.jobs.wait(job.id);
 * ```
 */
export class GenqClient {
  readonly jobs: JobsResource;
  readonly batches: BatchesResource;
  readonly events: EventsResource;
  readonly uploads: UploadsResource;
  readonly usage: UsageResource;
  readonly webhooks: WebhooksResource;

  constructor(options: ClientOptions) {
    const http = new HttpClient(options);
    this.events = new EventsResource(http);
    this.jobs = new JobsResource(http, this.events);
    this.batches = new BatchesResource(http, this.events);
    this.uploads = new UploadsResource(http);
    this.usage = new UsageResource(http);
    this.webhooks = new WebhooksResource(http);
  }
}
