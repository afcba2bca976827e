import { type FakeOpenAIRequest, fakeImagePng, startFakeOpenAIServer } from "@genq/providers/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, Harness } from "./harness.ts";

/** What the plan allows: small, so one job of the attack would overspend it many times. */
const TEXT_LIMIT = 5_000;
const IMAGE_LIMIT = 3;

/** The output a real model may run to when a request sets no cap (gpt-4o-mini's maximum). */
const SERVER_DEFAULT_MAX_TOKENS = 16_384;

/**
 * A provider that bills whatever it is asked for: every choice of `n` runs to the
 * output cap sent (or to the model's maximum when none is sent), input is counted as
 * real tokenizers do (a token per CJK character or emoji code point, four ASCII
 * characters a token), and a prompt that says "overbill" is billed 50,000 output
 * tokens whatever the cap: a provider counting differently from what was reserved.
 */
function billingProvider(request: FakeOpenAIRequest) {
  const body = request.body as Record<string, unknown>;
  if (request.path === "/v1/images/generations") {
    const n = typeof body.n === "number" ? body.n : 1;
    const b64 = Buffer.from(fakeImagePng).toString("base64");
    return { body: { created: 1, data: Array.from({ length: n }, () => ({ b64_json: b64 })) } };
  }
  if (request.path !== "/v1/chat/completions") return undefined;
  const messages = (body.messages ?? []) as Array<{ content: string }>;
  const text = messages.map((message) => message.content).join("");
  const ascii = [...text].filter((character) => character.charCodeAt(0) < 128).length;
  const promptTokens = [...text].length - ascii + Math.ceil(ascii / 4);
  const cap = (body.max_completion_tokens ?? body.max_tokens ?? SERVER_DEFAULT_MAX_TOKENS) as number;
  const n = typeof body.n === "number" ? body.n : 1;
  const completionTokens = text.includes("overbill") ? 50_000 : cap * n;
  return {
    body: {
      id: "chatcmpl-billing",
      object: "chat.completion",
      created: 1,
      model: body.model,
      choices: Array.from({ length: n }, (_, index) => ({
        index,
        message: { role: "assistant", content: "word ".repeat(20), refusal: null },
        finish_reason: "length",
        logprobs: null,
      })),
      usage: {
        prompt_tokens: promptTokens,
        completion_tokens: completionTokens,
        total_tokens: promptTokens + completionTokens,
      },
    },
  };
}

/** The value of one sample line `name{labels} value`, or undefined. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    if (wanted.every((part) => line.includes(part))) return Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return undefined;
}

describe("no request can overspend a plan (issue 12, item 1)", () => {
  let server: Awaited<ReturnType<typeof startFakeOpenAIServer>>;
  let harness: Harness;
  let metricsPort: number;

  beforeAll(async () => {
    server = await startFakeOpenAIServer({ apiKey: "sk-test-fake-key" });
    server.setHandler(billingProvider);
    metricsPort = await freePort();
    harness = await new Harness({
      workerEnv: {
        OPENAI_API_KEY: "sk-test-fake-key",
        OPENAI_BASE_URL: server.url,
        OPENAI_DEFAULT_MODEL: "gpt-4o-mini",
        GENQ_WORKER_HEALTH_PORT: String(metricsPort),
      },
    }).start();
  });
  afterAll(async () => {
    await harness?.close();
    await server?.close();
  });

  it("keeps used within the limit at every sample under adversarial jobs sent concurrently", async () => {
    const { userId, apiKey } = await harness.createUser();
    await harness.quota.setUserLimits(userId, { textTokenLimit: TEXT_LIMIT, imageLimit: IMAGE_LIMIT });
    const text = (input: Record<string, unknown>) => ({ type: "text", provider: "openai", input });
    const image = (providerOptions: Record<string, unknown>) => ({
      type: "image",
      provider: "openai",
      model: "gpt-image-1",
      input: {
        prompt: "a lantern",
        n: 1,
        size: "1024x1024",
        quality: "low",
        providerOptions: { openai: providerOptions },
      },
    });
    const attacks = [
      // The review's request: 50 choices of 100,000 tokens, priority tier, stored.
      text({
        prompt: "hello",
        providerOptions: {
          openai: { n: 50, max_completion_tokens: 100_000, service_tier: "priority", store: true },
        },
      }),
      text({ prompt: "hello", providerOptions: { openai: { max_tokens: 100_000 } } }),
      // Image count, quality and size smuggled past the job's own fields.
      image({ n: 10, quality: "high" }),
      image({ size: "1536x1024" }),
    ];
    const legitimate = [
      // A provider that reports more than the cap it was sent (first, so the plan has room for it).
      text({ prompt: "overbill me", maxTokens: 100 }),
      // CJK without maxTokens: 3 bytes a character, about one token each; 4 characters a token was a 3x under-reservation.
      text({ prompt: "請用中文詳細解釋量子計算的原理與應用。".repeat(10) }),
      // Emoji: one code point is a token or more, and 4 bytes.
      text({ prompt: "🚀🔥✨👩‍👩‍👧".repeat(30), maxTokens: 300 }),
      // Code, no maxTokens: the catalog gives no maxOutputTokens, so the documented default cap.
      text({ prompt: "function f(x) { return x * 2; }\n".repeat(10) }),
      image({ background: "opaque" }),
    ];
    const bodies = [...attacks, ...legitimate, ...legitimate];

    let sampling = true;
    let samples = 0;
    let worstText = 0;
    let worstImages = 0;
    const sampler = (async () => {
      while (sampling) {
        const { kinds } = await harness.quota.status(userId);
        worstText = Math.max(worstText, kinds.textTokens.used + kinds.textTokens.reserved);
        worstImages = Math.max(worstImages, kinds.images.used + kinds.images.reserved);
        samples += 1;
      }
    })();
    let responses: Awaited<ReturnType<Harness["submit"]>>[];
    try {
      responses = await Promise.all(bodies.map((body) => harness.submit(apiKey, body)));
      const accepted = responses.filter((response) => response.statusCode === 202);
      await Promise.all(accepted.map((response) => harness.waitForJob(apiKey, response.json().id)));
    } finally {
      sampling = false;
      await sampler;
    }

    // The plan was never overspent, not even for a moment.
    expect(samples).toBeGreaterThan(5);
    const { textTokens, images } = (await harness.quota.status(userId)).kinds;
    expect(textTokens.reserved).toBe(0);
    expect(textTokens.used).toBeLessThanOrEqual(TEXT_LIMIT);
    expect(images.used).toBeLessThanOrEqual(IMAGE_LIMIT);
    expect(worstText).toBeLessThanOrEqual(TEXT_LIMIT);
    expect(worstImages).toBeLessThanOrEqual(IMAGE_LIMIT);

    // Each attack was refused at submit, naming the option.
    for (const [index, expected] of [
      "input.providerOptions.openai.n is not allowed",
      "input.providerOptions.openai.max_tokens is not allowed",
      "input.providerOptions.openai.n is not allowed",
      "input.providerOptions.openai.size is not allowed",
    ].entries()) {
      expect(responses[index]?.statusCode).toBe(400);
      expect(responses[index]?.json().error).toMatchObject({ code: "invalid_request" });
      expect(responses[index]?.json().error.message).toContain(expected);
    }

    // Every call on the wire carried the cap that was reserved, and no forbidden option.
    const chats = server.requests.filter((request) => request.path === "/v1/chat/completions");
    expect(chats.length).toBeGreaterThan(0);
    for (const chat of chats) {
      const body = chat.body as Record<string, unknown>;
      expect(body.max_tokens ?? body.max_completion_tokens).toBeLessThanOrEqual(1_024);
      for (const forbidden of ["n", "service_tier", "store"]) expect(body).not.toHaveProperty(forbidden);
    }
    for (const call of server.requests.filter((request) => request.path === "/v1/images/generations")) {
      expect(call.body).toMatchObject({ n: 1, quality: "low", size: "1024x1024" });
    }

    // Real work was done within the plan: any three of the text jobs fit it together, so at
    // least three ran; the others were refused by the reservation, never charged past it.
    const legitimateJobs = await harness.db.job.findMany({ where: { userId, type: "text" } });
    expect(legitimateJobs.filter((job) => job.status === "completed").length).toBeGreaterThanOrEqual(3);
    for (const job of legitimateJobs.filter((job) => job.status === "failed")) {
      expect(job.errorCode).toBe("quota_exceeded");
    }
    const overbilledId = responses[attacks.length]!.json().id as string;
    const overbilled = await harness.getJob(apiKey, overbilledId);
    expect(overbilled.status).toBe("completed");
    expect((overbilled.usage as { outputTokens: number }).outputTokens).toBe(50_000);
    const reservation = await harness.quota.reservation(overbilledId);
    expect(reservation).toMatchObject({ status: "settled" });

    // The overbilled job was charged its reservation, and the excess counted.
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(sample(metrics, "genq_quota_settlement_excess_total", { kind: "text_tokens" })).toBeGreaterThan(
      40_000,
    );
  }, 120_000);

  it("refuses batch items that smuggle options, naming each option", async () => {
    const { apiKey } = await harness.createUser();
    const response = await harness.app.inject({
      method: "POST",
      url: "/v1/batches",
      headers: { authorization: `Bearer ${apiKey}` },
      payload: {
        type: "text",
        provider: "openai",
        items: [
          { prompt: "fine", maxTokens: 5 },
          { prompt: "many", providerOptions: { openai: { n: 50 } } },
          { prompt: "priority", providerOptions: { openai: { service_tier: "priority" } } },
        ],
      },
    });
    expect(response.statusCode).toBe(202);
    const batch = response.json() as { invalidItems: Array<{ index: number; message: string }> };
    expect(batch.invalidItems.map((item) => item.index)).toEqual([1, 2]);
    expect(batch.invalidItems[0]?.message).toContain("input.providerOptions.openai.n is not allowed");
    expect(batch.invalidItems[1]?.message).toContain(
      "input.providerOptions.openai.service_tier is not allowed",
    );
  });
});
