import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { startTracing, type Tracing } from "@genq/telemetry";
import { InMemorySpanExporter, type ReadableSpan } from "@genq/telemetry/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Harness, waitUntil } from "./harness.ts";

describe("OpenTelemetry: one trace per job", () => {
  const exporter = new InMemorySpanExporter();
  let tracing: Tracing;
  const harness = new Harness({ workerEnv: { GENQ_WEBHOOK_ALLOWED_HOSTS: "127.0.0.1" } });
  let user: { userId: string; apiKey: string };
  let receiver: Server;
  let receiverUrl: string;
  const received: string[] = [];

  beforeAll(async () => {
    // API and worker run in this process, so one tracer provider sees both sides; the
    // context still travels only through the BullMQ job data, as between processes.
    tracing = startTracing({ serviceName: "genq-test", exporter });
    receiver = createServer((request, response) => {
      let body = "";
      request.on("data", (chunk: Buffer) => {
        body += chunk.toString();
      });
      request.on("end", () => {
        received.push(body);
        response.writeHead(200).end();
      });
    });
    receiver.listen(0, "127.0.0.1");
    await once(receiver, "listening");
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    await harness.start();
    user = await harness.createUser();
  });
  afterAll(async () => {
    await harness.close();
    receiver.close();
    await tracing.shutdown();
  });

  function spansOfTrace(traceId: string): ReadableSpan[] {
    return exporter.getFinishedSpans().filter((span) => span.spanContext().traceId === traceId);
  }

  function submitSpan(jobId: string): ReadableSpan {
    const span = exporter
      .getFinishedSpans()
      .find(
        (candidate) => candidate.name === "genq.job.submit" && candidate.attributes["genq.job.id"] === jobId,
      );
    if (span === undefined) throw new Error(`no submit span for job ${jobId}`);
    return span;
  }

  it("follows a text job from the API through the worker and the provider call to its webhook delivery", async () => {
    const submitted = await harness.submit(user.apiKey, {
      type: "text",
      input: { prompt: "trace me" },
      webhook: { url: receiverUrl },
    });
    expect(submitted.statusCode).toBe(202);
    const jobId = submitted.json().id as string;
    await harness.waitForJob(user.apiKey, jobId);
    await waitUntil(() => received.some((body) => body.includes(jobId)), 20_000);

    const traceId = submitSpan(jobId).spanContext().traceId;
    await waitUntil(() => spansOfTrace(traceId).some((span) => span.name === "genq.webhook.deliver"), 20_000);
    const spans = spansOfTrace(traceId);
    const byName = (name: string) => spans.filter((span) => span.name === name);
    const [submit] = byName("genq.job.submit");
    const [run] = byName("genq.job.run");
    const [call] = byName("genq.provider.call");
    const [deliver] = byName("genq.webhook.deliver");
    expect(run?.attributes["genq.job.id"]).toBe(jobId);
    // The worker's span is a child of the API's: the context came through the queue payload.
    expect(run?.parentSpanContext?.spanId).toBe(submit?.spanContext().spanId);
    expect(call?.parentSpanContext?.spanId).toBe(run?.spanContext().spanId);
    expect(call?.attributes).toMatchObject({ "genq.provider": "mock" });
    expect(deliver?.attributes).toMatchObject({ "genq.webhook.outcome": "attempted" });
  });

  it("includes the storage upload of an image job, and gives each job its own trace", async () => {
    const image = (
      await harness.submit(user.apiKey, { type: "image", input: { prompt: "a traced square", n: 1 } })
    ).json();
    const text = (
      await harness.submit(user.apiKey, { type: "text", input: { prompt: "another trace" } })
    ).json();
    await harness.waitForJob(user.apiKey, image.id);
    await harness.waitForJob(user.apiKey, text.id);

    const imageTrace = submitSpan(image.id).spanContext().traceId;
    expect(submitSpan(text.id).spanContext().traceId).not.toBe(imageTrace);
    await waitUntil(() => spansOfTrace(imageTrace).some((span) => span.name === "genq.job.run"), 20_000);
    const names = spansOfTrace(imageTrace).map((span) => span.name);
    expect(names).toEqual(
      expect.arrayContaining([
        "genq.job.submit",
        "genq.job.run",
        "genq.provider.call",
        "genq.storage.upload",
      ]),
    );
    const upload = spansOfTrace(imageTrace).find((span) => span.name === "genq.storage.upload");
    expect(upload?.attributes["genq.images"]).toBe(1);
  });
});
