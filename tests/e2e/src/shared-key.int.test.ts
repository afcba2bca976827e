import { type FakeOpenAIServer, startFakeOpenAIServer } from "@genq/providers/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, Harness } from "./harness.ts";

const BASIC = `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString("base64")}`;

/** OpenAI's answer to an image request from an organization that is not verified (a 403 about the request). */
const ORGANIZATION_NOT_VERIFIED = {
  error: {
    message:
      "Your organization must be verified to use the model `gpt-image-1`. Please go to: https://platform.openai.com/settings/organization/general and click on Verify Organization. If you just verified, it can take up to 15 minutes for access to propagate.",
    type: "invalid_request_error",
    param: null,
    code: null,
  },
};

describe("one tenant's request cannot take the shared key away from the others", () => {
  let server: FakeOpenAIServer;
  let harness: Harness;

  beforeAll(async () => {
    server = await startFakeOpenAIServer({ apiKey: "sk-shared-system-key" });
    // The operator's organization may use chat models but not gpt-image-1.
    server.setHandler((request) =>
      request.path === "/v1/images/generations"
        ? { status: 403, body: ORGANIZATION_NOT_VERIFIED }
        : undefined,
    );
    harness = await new Harness({
      workerEnv: {
        OPENAI_API_KEY: "sk-shared-system-key",
        OPENAI_BASE_URL: server.url,
        OPENAI_DEFAULT_MODEL: "gpt-4o-mini",
      },
    }).start();
  });
  afterAll(async () => {
    await harness.close();
    await server.close();
  });

  it("fails the gpt-image-1 job with invalid_request and keeps the key serving everyone's text jobs", async () => {
    const mallory = await harness.createUser();
    const alice = await harness.createUser();
    const image = (
      await harness.submit(mallory.apiKey, {
        type: "image",
        provider: "openai",
        model: "gpt-image-1",
        input: { prompt: "a lighthouse" },
      })
    ).json();
    const failed = await harness.waitForJob(mallory.apiKey, image.id);
    expect(failed).toMatchObject({ status: "failed", attempts: 1, error: { code: "invalid_request" } });

    const report = await harness.app.inject({
      method: "GET",
      url: "/v1/admin/providers",
      headers: { authorization: BASIC },
    });
    const openai = report.json().providers.find((provider: { name: string }) => provider.name === "openai");
    expect(openai.keys).toEqual([expect.objectContaining({ id: "default", state: "ok" })]);

    const text = (
      await harness.submit(alice.apiKey, {
        type: "text",
        provider: "openai",
        input: { prompt: "still here?" },
      })
    ).json();
    expect(await harness.waitForJob(alice.apiKey, text.id)).toMatchObject({
      status: "completed",
      provider: "openai",
      attempts: 1,
    });
    expect(server.requests.filter((request) => request.path === "/v1/chat/completions")).toHaveLength(1);
  });
});
