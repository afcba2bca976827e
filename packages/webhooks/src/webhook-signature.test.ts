import { newWebhookSecret } from "@genq/db";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { sign, signatureHeader, webhookHeaders } from "./webhook-signature.ts";

const body = JSON.stringify({
  type: "job.completed",
  timestamp: "2026-01-01T00:00:00.000Z",
  data: { id: "x" },
});

describe("webhook signatures", () => {
  it("match the standardwebhooks package's signature", () => {
    const secret = newWebhookSecret();
    const at = new Date("2026-11-22T10:00:00Z");
    expect(sign(secret, "msg_1", Math.floor(at.getTime() / 1000), body)).toBe(
      new Webhook(secret).sign("msg_1", at, body),
    );
  });

  it("verify with the standardwebhooks package", () => {
    const secret = newWebhookSecret();
    const headers = webhookHeaders({ secret }, "0195f0c2-0000-7000-8000-000000000001", body);
    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
  });

  it("fail verification with another secret or a changed body", () => {
    const headers = webhookHeaders({ secret: newWebhookSecret() }, "msg_2", body);
    expect(() => new Webhook(newWebhookSecret()).verify(body, headers)).toThrow();
    const secret = newWebhookSecret();
    const signed = webhookHeaders({ secret }, "msg_2", body);
    expect(() => new Webhook(secret).verify(`${body} `, signed)).toThrow();
  });

  it("carry the previous secret's signature during its grace period, so either secret verifies", () => {
    const previousSecret = newWebhookSecret();
    const secret = newWebhookSecret();
    const now = new Date();
    const secrets = { secret, previousSecret, previousSecretExpiresAt: new Date(now.getTime() + 60_000) };
    const headers = webhookHeaders(secrets, "msg_3", body, now);
    expect(headers["webhook-signature"].split(" ")).toHaveLength(2);
    expect(new Webhook(secret).verify(body, headers)).toBeTruthy();
    expect(new Webhook(previousSecret).verify(body, headers)).toBeTruthy();
  });

  it("drop the previous secret once its grace period ended", () => {
    const previousSecret = newWebhookSecret();
    const now = new Date();
    const header = signatureHeader(
      { secret: newWebhookSecret(), previousSecret, previousSecretExpiresAt: new Date(now.getTime() - 1) },
      "msg_4",
      Math.floor(now.getTime() / 1000),
      body,
      now,
    );
    expect(header.split(" ")).toHaveLength(1);
    expect(newWebhookSecret()).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
  });
});
