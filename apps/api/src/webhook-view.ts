import type { WebhookEndpointRecord, WebhookMessageWithDeliveries } from "@genq/db";
import { z } from "zod";
import { documentedAs } from "./openapi/documented-as.ts";
import { listPage } from "./routes/page-cursor.ts";

/** A webhook endpoint as the API shows it (its secret only on create and `GET .../secret`). */
export const WebhookEndpointView = z
  .object({
    id: z.string(),
    object: z.literal("webhook_endpoint"),
    url: z.string(),
    description: z.string().nullable(),
    eventTypes: z.array(z.string()).describe("Event types delivered here; empty means every type"),
    disabled: z.boolean(),
    disabledAt: z.string().nullable(),
    disabledReason: z
      .string()
      .nullable()
      .describe("Why it was disabled: by you, it answered 410 Gone, or every attempt failed for too long"),
    batchItemEvents: z.boolean().describe("Whether the job events of batch items are delivered here"),
    failingSince: z
      .string()
      .nullable()
      .describe(
        "Since when every attempt failed (no delivery since); it is disabled when this lasts too long",
      ),
    createdAt: z.string(),
    updatedAt: z.string(),
    links: z.object({ self: z.string(), deliveries: z.string() }),
  })
  .meta({ id: "WebhookEndpoint" });
export type WebhookEndpointView = z.infer<typeof WebhookEndpointView>;

/** An endpoint with its secret (the answer to create). */
export const WebhookEndpointWithSecretView = WebhookEndpointView.extend({
  secret: z.string().describe("`whsec_...`: verify deliveries with it (Standard Webhooks)"),
}).meta({ id: "WebhookEndpointWithSecret" });

/** A signing secret, and until when the previous one still signs. */
export const WebhookSecretView = z
  .object({
    secret: z.string().describe("`whsec_...`"),
    previousSecretExpiresAt: z
      .string()
      .nullable()
      .describe("Until then deliveries also carry a signature made with the previous secret"),
  })
  .meta({ id: "WebhookSecret" });
export type WebhookSecretView = z.infer<typeof WebhookSecretView>;

/** One delivery attempt. */
export const WebhookAttemptView = z
  .object({
    attempt: z.number().int(),
    outcome: z.string().describe("delivered, failed, timeout, refused (SSRF guard) or error"),
    responseStatus: z.number().int().nullable(),
    latencyMs: z.number().int(),
    responseExcerpt: z.string().nullable().describe("The first KiB of the answer"),
    errorMessage: z.string().nullable(),
    createdAt: z.string(),
  })
  .meta({ id: "WebhookAttempt" });

/** A webhook message (one event for one target) with its attempts, newest first. */
export const WebhookMessageView = z
  .object({
    id: z.string().describe("The `webhook-id` header of every attempt"),
    object: z.literal("webhook_message"),
    eventType: z.string(),
    endpointId: z.string().nullable(),
    url: z.string().nullable().describe("The per-request URL; null for endpoint messages"),
    jobId: z.string().nullable(),
    batchId: z.string().nullable(),
    status: z.enum(["pending", "delivered", "failed", "canceled"]),
    attempts: z.number().int(),
    nextAttemptAt: z.string().nullable(),
    lastAttemptAt: z.string().nullable(),
    deliveredAt: z.string().nullable(),
    createdAt: z.string(),
    payload: documentedAs("WebhookEvent").describe("The body that is POSTed"),
    deliveries: z.array(WebhookAttemptView),
  })
  .meta({ id: "WebhookMessage" });
export type WebhookMessageView = z.infer<typeof WebhookMessageView>;

/** A page of messages, newest first. */
export const WebhookMessagePage = listPage(WebhookMessageView).meta({ id: "WebhookMessagePage" });

/** The view of an endpoint. */
export function toWebhookEndpointView(
  endpoint: WebhookEndpointRecord,
  publicUrl: string,
): WebhookEndpointView {
  const self = `${publicUrl.replace(/\/$/, "")}/v1/webhook-endpoints/${endpoint.id}`;
  return {
    id: endpoint.id,
    object: "webhook_endpoint",
    url: endpoint.url,
    description: endpoint.description,
    eventTypes: endpoint.eventTypes,
    disabled: endpoint.disabledAt !== null,
    disabledAt: endpoint.disabledAt?.toISOString() ?? null,
    disabledReason: endpoint.disabledReason,
    batchItemEvents: endpoint.batchItemEvents,
    failingSince: endpoint.failingSince?.toISOString() ?? null,
    createdAt: endpoint.createdAt.toISOString(),
    updatedAt: endpoint.updatedAt.toISOString(),
    links: { self, deliveries: `${self}/deliveries` },
  };
}

/** The view of a secret pair; the previous secret itself is never shown again. */
export function toWebhookSecretView(secrets: {
  secret: string;
  previousSecret: string | null;
  previousSecretExpiresAt: Date | null;
}): WebhookSecretView {
  const expiresAt = secrets.previousSecretExpiresAt;
  const inGrace = secrets.previousSecret !== null && expiresAt !== null && expiresAt.getTime() > Date.now();
  return { secret: secrets.secret, previousSecretExpiresAt: inGrace ? expiresAt.toISOString() : null };
}

/** The view of a message with its attempts. */
export function toWebhookMessageView(message: WebhookMessageWithDeliveries): WebhookMessageView {
  return {
    id: message.id,
    object: "webhook_message",
    eventType: message.eventType,
    endpointId: message.endpointId,
    url: message.url,
    jobId: message.jobId,
    batchId: message.batchId,
    status: message.status as WebhookMessageView["status"],
    attempts: message.attempts,
    nextAttemptAt: message.status === "pending" ? message.nextAttemptAt.toISOString() : null,
    lastAttemptAt: message.lastAttemptAt?.toISOString() ?? null,
    deliveredAt: message.deliveredAt?.toISOString() ?? null,
    createdAt: message.createdAt.toISOString(),
    payload: message.payload,
    deliveries: message.deliveries.map((delivery) => ({
      attempt: delivery.attempt,
      outcome: delivery.outcome,
      responseStatus: delivery.responseStatus,
      latencyMs: delivery.latencyMs,
      responseExcerpt: delivery.responseExcerpt,
      errorMessage: delivery.errorMessage,
      createdAt: delivery.createdAt.toISOString(),
    })),
  };
}
