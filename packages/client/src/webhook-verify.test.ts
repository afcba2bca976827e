import { webhookHeaders } from "@genq/webhooks";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { WebhookVerificationError } from "./errors.ts";
import { verifyWebhook } from "./webhook-verify.ts";

// Signed by genq's own signer (@genq/webhooks), as a worker signs a delivery.
const secret = `whsec_${btoa("a webhook secret of 32 bytes....")}`;
const previous = `whsec_${btoa("the previous secret, 32 bytes...")}`;
const body = JSON.stringify({
  type: "job.completed",
  timestamp: "2026-12-03T12:00:00.000Z",
  data: { id: "job-1", object: "job", type: "text", status: "completed", links: { job: "/v1/jobs/job-1" } },
});
const sentAt = new Date("2026-12-03T12:00:00.000Z");

function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => new Error("verified, but should not have"),
    (error: unknown) => error,
  );
}

describe("verifyWebhook", () => {
  it("accepts a delivery signed by genq and returns the typed event", async () => {
    const headers = webhookHeaders({ secret }, "msg_1", body, sentAt);
    const event = await verifyWebhook(body, headers, secret, { now: sentAt });
    expect(event.type).toBe("job.completed");
    if (event.type !== "job.completed") throw new Error("narrowing");
    expect(event.data.status).toBe("completed");
    expect(event.data.links.job).toBe("/v1/jobs/job-1");
  });

  it("accepts bytes, a fetch Headers object and a receiver still holding the previous secret", async () => {
    const headers = webhookHeaders(
      { secret, previousSecret: previous, previousSecretExpiresAt: new Date(sentAt.getTime() + 60_000) },
      "msg_2",
      body,
      sentAt,
    );
    const event = await verifyWebhook(new TextEncoder().encode(body), new Headers(headers), previous, {
      now: sentAt,
    });
    expect(event.type).toBe("job.completed");
  });

  it("finds the headers whatever their case", async () => {
    const headers = webhookHeaders({ secret }, "msg_7", body, sentAt);
    const capitalized = {
      "Webhook-Id": headers["webhook-id"],
      "Webhook-Timestamp": headers["webhook-timestamp"],
      "Webhook-Signature": headers["webhook-signature"],
    };
    await expect(verifyWebhook(body, capitalized, secret, { now: sentAt })).resolves.toMatchObject({
      type: "job.completed",
    });
  });

  it("agrees with the reference Standard Webhooks library", async () => {
    const headers = webhookHeaders({ secret }, "msg_3", body, new Date());
    expect(new Webhook(secret).verify(body, headers)).toEqual(await verifyWebhook(body, headers, secret));
  });

  it("rejects a changed body, a wrong secret, a changed id and a missing header", async () => {
    const headers = webhookHeaders({ secret }, "msg_4", body, sentAt);
    const options = { now: sentAt };
    const cases = [
      verifyWebhook(body.replace("completed", "failed"), headers, secret, options),
      verifyWebhook(body, headers, previous, options),
      verifyWebhook(body, { ...headers, "webhook-id": "msg_5" }, secret, options),
      verifyWebhook(body, { ...headers, "webhook-signature": undefined }, secret, options),
      verifyWebhook(body, { ...headers, "webhook-signature": "v2,AAAA v1,not-base64!" }, secret, options),
    ];
    for (const error of await Promise.all(cases.map(rejection))) {
      expect(error).toBeInstanceOf(WebhookVerificationError);
    }
  });

  it("rejects a delivery older or newer than the tolerance (a replay), and accepts one inside it", async () => {
    const headers = webhookHeaders({ secret }, "msg_6", body, sentAt);
    const at = (seconds: number) => ({ now: new Date(sentAt.getTime() + seconds * 1_000) });
    expect(await rejection(verifyWebhook(body, headers, secret, at(301)))).toMatchObject({
      message: expect.stringContaining("too old"),
    });
    expect(await rejection(verifyWebhook(body, headers, secret, at(-301)))).toBeInstanceOf(
      WebhookVerificationError,
    );
    await expect(verifyWebhook(body, headers, secret, at(299))).resolves.toMatchObject({
      type: "job.completed",
    });
    expect(
      await rejection(verifyWebhook(body, headers, secret, { ...at(60), toleranceSeconds: 30 })),
    ).toBeInstanceOf(WebhookVerificationError);
  });
});
