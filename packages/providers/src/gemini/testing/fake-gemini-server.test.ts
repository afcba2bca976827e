import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type FakeGeminiServer, geminiErrorBodies, startFakeGeminiServer } from "./fake-gemini-server.ts";

const API_KEY = "AIzaSyTest-fake-server";

let server: FakeGeminiServer;

beforeAll(async () => {
  server = await startFakeGeminiServer({ apiKey: API_KEY });
});

afterAll(async () => {
  await server.close();
});

beforeEach(() => {
  server.reset();
});

function generate(path: string, headers: Record<string, string> = { "x-goog-api-key": API_KEY }) {
  return fetch(`${server.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ contents: [{ role: "user", parts: [{ text: "Hi" }] }] }),
  });
}

describe("startFakeGeminiServer", () => {
  it("answers Google's 403 PERMISSION_DENIED without a key and 400 API_KEY_INVALID with a wrong one", async () => {
    const missing = await generate("/v1beta/models/gemini-2.5-flash:generateContent", {});
    expect(missing.status).toBe(403);
    expect(await missing.json()).toEqual(geminiErrorBodies.unregisteredCaller);
    const wrong = await generate("/v1beta/models/gemini-2.5-flash:generateContent", {
      "x-goog-api-key": "nope",
    });
    expect(wrong.status).toBe(400);
    expect(await wrong.json()).toEqual(geminiErrorBodies.apiKeyInvalid);
  });

  it("accepts the key as a ?key= query parameter, as Google does", async () => {
    const response = await generate(`/v1beta/models/gemini-2.5-flash:generateContent?key=${API_KEY}`, {});
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      candidates: [
        {
          content: { role: "model", parts: [{ text: "This is a fake reply to: Hi" }] },
          finishReason: "STOP",
        },
      ],
      usageMetadata: { promptTokenCount: 1, candidatesTokenCount: 7, totalTokenCount: 8 },
      modelVersion: "gemini-2.5-flash",
    });
  });

  it("streams server-sent events with alt=sse and one JSON array without it", async () => {
    const events = await (
      await generate("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
    ).text();
    const chunks = events
      .split("\r\n\r\n")
      .filter((event) => event !== "")
      .map((event) => JSON.parse(event.replace(/^data: /, "")) as { responseId: string });
    expect(chunks.length).toBeGreaterThan(1);
    expect(new Set(chunks.map((chunk) => chunk.responseId)).size).toBe(1);
    const array = await (await generate("/v1beta/models/gemini-2.5-flash:streamGenerateContent")).json();
    expect(Array.isArray(array)).toBe(true);
  });

  it("pages the model list", async () => {
    const headers = { "x-goog-api-key": API_KEY };
    const first = (await (await fetch(`${server.url}/v1beta/models?pageSize=2`, { headers })).json()) as {
      models: unknown[];
      nextPageToken: string;
    };
    expect(first.models).toHaveLength(2);
    const second = (await (
      await fetch(`${server.url}/v1beta/models?pageSize=2&pageToken=${first.nextPageToken}`, { headers })
    ).json()) as { models: unknown[]; nextPageToken?: string };
    expect(second.models).toHaveLength(1);
    expect(second.nextPageToken).toBeUndefined();
  });

  it("records requests and answers queued responses before the handler", async () => {
    server.setHandler(() => ({ status: 503, body: geminiErrorBodies.unavailable }));
    server.queueResponse({ status: 429, body: geminiErrorBodies.rateLimit });
    expect((await generate("/v1beta/models/m:generateContent")).status).toBe(429);
    expect((await generate("/v1beta/models/m:generateContent")).status).toBe(503);
    expect(server.requests.map((request) => request.path)).toEqual([
      "/v1beta/models/m:generateContent",
      "/v1beta/models/m:generateContent",
    ]);
  });

  it("answers 404 NOT_FOUND for an unknown path", async () => {
    const response = await fetch(`${server.url}/v1/chat/completions`, {
      headers: { "x-goog-api-key": API_KEY },
    });
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ error: { code: 404, status: "NOT_FOUND" } });
  });
});
