import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type FakeAnthropicServer, startFakeAnthropicServer } from "./fake-anthropic-server.ts";

const API_KEY = "sk-ant-api03-fake";
const BODY = { model: "claude-haiku-4-5", max_tokens: 64, messages: [{ role: "user", content: "Hi" }] };

let server: FakeAnthropicServer;

beforeAll(async () => {
  server = await startFakeAnthropicServer({ apiKey: API_KEY });
});

afterAll(async () => {
  await server.close();
});

beforeEach(() => {
  server.reset();
});

function post(headers: Record<string, string>, body: unknown = BODY): Promise<Response> {
  return fetch(`${server.url}/v1/messages`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

describe("startFakeAnthropicServer", () => {
  it("accepts the key as x-api-key, as curl and other clients send it", async () => {
    const response = await post({ "x-api-key": API_KEY, "anthropic-version": "2023-06-01" });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      type: "message",
      role: "assistant",
      stop_reason: "end_turn",
    });
    expect(server.requests[0]).toMatchObject({ method: "POST", path: "/v1/messages", body: BODY });
  });

  it("answers Anthropic's 401 body, with the request id of the header, to a wrong key", async () => {
    const response = await post({ "x-api-key": "sk-ant-wrong", "anthropic-version": "2023-06-01" });
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({
      type: "error",
      error: { type: "authentication_error", message: "invalid x-api-key" },
      request_id: response.headers.get("request-id"),
    });
  });

  it("requires the anthropic-version header and the required fields, as the API does", async () => {
    const withoutVersion = await post({ authorization: `Bearer ${API_KEY}` });
    expect(withoutVersion.status).toBe(400);
    expect(await withoutVersion.json()).toMatchObject({
      error: { type: "invalid_request_error", message: "anthropic-version: header is required" },
    });
    const withoutMaxTokens = await post(
      { authorization: `Bearer ${API_KEY}`, "anthropic-version": "2023-06-01" },
      { model: BODY.model, messages: BODY.messages },
    );
    expect(withoutMaxTokens.status).toBe(400);
    expect(await withoutMaxTokens.json()).toMatchObject({ error: { message: "max_tokens: Field required" } });
  });

  it("streams the events of a message in the API's order", async () => {
    const response = await post(
      { "x-api-key": API_KEY, "anthropic-version": "2023-06-01" },
      { ...BODY, stream: true },
    );
    expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const names = [...(await response.text()).matchAll(/^event: (\S+)$/gm)].map((match) => match[1]);
    expect(names[0]).toBe("message_start");
    expect(names.slice(1, 3)).toEqual(["content_block_start", "ping"]);
    expect(names.slice(-4)).toEqual([
      "content_block_delta",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
  });
});
