import { isId, NotFoundError, WEBHOOK_EVENT_TYPES } from "@genq/core";
import { checkWebhookTarget } from "@genq/webhooks";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import {
  toWebhookEndpointView,
  toWebhookMessageView,
  toWebhookSecretView,
  WebhookEndpointView,
  WebhookEndpointWithSecretView,
  WebhookMessagePage,
  WebhookMessageView,
  WebhookSecretView,
} from "../webhook-view.ts";
import { ErrorResponse } from "./error-response.ts";
import { decodeCursor, encodeCursor } from "./page-cursor.ts";

/** Options for {@link webhookRoutes}. */
export interface WebhookRoutesOptions {
  /** Prefix of links in responses; empty for relative links. */
  publicUrl: string;
}

const EndpointUrl = z
  .url({ protocol: /^https?$/, error: "url must be an absolute http(s) URL" })
  .max(2_048, "url must be at most 2048 characters");

const EventTypes = z
  .array(z.enum(WEBHOOK_EVENT_TYPES))
  .max(WEBHOOK_EVENT_TYPES.length)
  .describe("Event types to deliver here; empty or absent means every type");

const BatchItemEvents = z
  .boolean()
  .describe(
    "Also deliver the job.completed and job.failed events of batch items here (one call per item); " +
      "default false: batches report through batch.progress and batch.completed",
  );

const CreateEndpoint = z
  .object({
    url: EndpointUrl,
    description: z.string().max(500).optional(),
    eventTypes: EventTypes.optional(),
    batchItemEvents: BatchItemEvents.optional(),
  })
  .strict()
  .meta({ id: "CreateWebhookEndpoint" });

const UpdateEndpoint = z
  .object({
    url: EndpointUrl.optional(),
    description: z.string().max(500).nullable().optional(),
    eventTypes: EventTypes.optional(),
    batchItemEvents: BatchItemEvents.optional(),
    disabled: z
      .boolean()
      .optional()
      .describe("false re-enables an endpoint (e.g. after a 410); true pauses it"),
  })
  .strict()
  .meta({ id: "UpdateWebhookEndpoint" });

const RotateSecret = z
  .object({
    graceSeconds: z
      .number()
      .int()
      .min(0)
      .max(7 * 86_400)
      .default(86_400)
      .describe("How long the old secret keeps signing (a second signature); default 24 h"),
  })
  .strict()
  .default({ graceSeconds: 86_400 });

const IdParams = z.object({ id: z.string() });

const PageQuery = z
  .object({
    cursor: z.string().max(64).optional().describe("`nextCursor` of the previous page"),
    limit: z.coerce.number().int().min(1).max(100).default(20),
  })
  .strict();

const MessageQuery = PageQuery.extend({
  jobId: z.string().optional(),
  batchId: z.string().optional(),
}).strict();

const EndpointList = z
  .object({ object: z.literal("list"), data: z.array(WebhookEndpointView) })
  .meta({ id: "WebhookEndpointList" });

function requireId(resource: string, id: string): string {
  if (!isId(id)) throw new NotFoundError(resource, id);
  return id;
}

/**
 * Webhooks (Standard Webhooks): `/v1/webhook-endpoints` (CRUD, secrets and their
 * rotation, the delivery log), `/v1/webhook-secret` (the secret of per-request
 * `webhook.url`s) and `/v1/webhook-messages` (every message, redelivery).
 */
export async function webhookRoutes(app: FastifyInstance, options: WebhookRoutesOptions): Promise<void> {
  const routes = app.withTypeProvider<ZodTypeProvider>();
  const { webhooks, webhookAllowlist, webhookQueue } = app.genq;

  /** A page of messages, newest first; a full page has a cursor to the next. */
  async function messagePage(
    filter: { userId: string; endpointId?: string; jobId?: string | undefined; batchId?: string | undefined },
    cursor: string | undefined,
    limit: number,
  ) {
    const page = await webhooks.listMessages({
      ...filter,
      cursor: cursor === undefined ? undefined : decodeCursor(cursor),
      limit,
    });
    return {
      object: "list" as const,
      data: page.map(toWebhookMessageView),
      nextCursor: page.length < limit ? null : encodeCursor(page.at(-1)?.id ?? null),
    };
  }
  const errors = { 400: ErrorResponse, 401: ErrorResponse, 404: ErrorResponse };

  routes.post(
    "/webhook-endpoints",
    {
      schema: {
        operationId: "createWebhookEndpoint",
        summary: "Create a webhook endpoint",
        description:
          "Events of your jobs and batches are POSTed here, signed with the endpoint's own `whsec_` secret " +
          "(shown in this answer and at `GET .../secret`). URLs resolving to private, loopback, link-local or " +
          "metadata addresses are refused. A user has at most a configured number of endpoints (default 20): " +
          "one more answers 409 `conflict`. An endpoint whose attempts all fail for the configured time " +
          "(default 5 days) is disabled, and `webhook_endpoint.disabled` goes to your other endpoints.",
        tags: ["webhooks"],
        body: CreateEndpoint,
        response: {
          201: WebhookEndpointWithSecretView,
          400: ErrorResponse,
          401: ErrorResponse,
          409: ErrorResponse,
        },
      },
    },
    async (request, reply) => {
      await checkWebhookTarget(request.body.url, webhookAllowlist);
      const endpoint = await webhooks.createEndpoint({ userId: request.principal.userId, ...request.body });
      request.log.info({ endpointId: endpoint.id }, "webhook endpoint created");
      return reply
        .status(201)
        .send({ ...toWebhookEndpointView(endpoint, options.publicUrl), secret: endpoint.secret });
    },
  );

  routes.get(
    "/webhook-endpoints",
    {
      schema: {
        operationId: "listWebhookEndpoints",
        summary: "List your webhook endpoints",
        tags: ["webhooks"],
        response: { 200: EndpointList, 401: ErrorResponse },
      },
    },
    async (request) => {
      const list = await webhooks.listEndpoints(request.principal.userId);
      return {
        object: "list" as const,
        data: list.map((endpoint) => toWebhookEndpointView(endpoint, options.publicUrl)),
      };
    },
  );

  routes.get(
    "/webhook-endpoints/:id",
    {
      schema: {
        operationId: "getWebhookEndpoint",
        summary: "Get a webhook endpoint",
        tags: ["webhooks"],
        params: IdParams,
        response: { 200: WebhookEndpointView, ...errors },
      },
    },
    async (request) => {
      const id = requireId("webhook_endpoint", request.params.id);
      return toWebhookEndpointView(
        await webhooks.getEndpoint(request.principal.userId, id),
        options.publicUrl,
      );
    },
  );

  routes.patch(
    "/webhook-endpoints/:id",
    {
      schema: {
        operationId: "updateWebhookEndpoint",
        summary: "Update a webhook endpoint",
        description: "`disabled: false` re-enables an endpoint that was disabled (by you, or by a 410 Gone).",
        tags: ["webhooks"],
        params: IdParams,
        body: UpdateEndpoint,
        response: { 200: WebhookEndpointView, ...errors },
      },
    },
    async (request) => {
      const id = requireId("webhook_endpoint", request.params.id);
      if (request.body.url !== undefined) await checkWebhookTarget(request.body.url, webhookAllowlist);
      const endpoint = await webhooks.updateEndpoint(request.principal.userId, id, request.body);
      return toWebhookEndpointView(endpoint, options.publicUrl);
    },
  );

  routes.delete(
    "/webhook-endpoints/:id",
    {
      schema: {
        operationId: "deleteWebhookEndpoint",
        summary: "Delete a webhook endpoint",
        description: "Its pending messages and delivery log go with it.",
        tags: ["webhooks"],
        params: IdParams,
        response: { 204: z.null(), ...errors },
      },
    },
    async (request, reply) => {
      const id = requireId("webhook_endpoint", request.params.id);
      if (!(await webhooks.deleteEndpoint(request.principal.userId, id))) {
        throw new NotFoundError("webhook_endpoint", id);
      }
      return reply.status(204).send(null);
    },
  );

  routes.get(
    "/webhook-endpoints/:id/secret",
    {
      schema: {
        operationId: "getWebhookEndpointSecret",
        summary: "Get a webhook endpoint's signing secret",
        tags: ["webhooks"],
        params: IdParams,
        response: { 200: WebhookSecretView, ...errors },
      },
    },
    async (request) => {
      const id = requireId("webhook_endpoint", request.params.id);
      return toWebhookSecretView(await webhooks.getEndpoint(request.principal.userId, id));
    },
  );

  routes.post(
    "/webhook-endpoints/:id/rotate-secret",
    {
      schema: {
        operationId: "rotateWebhookEndpointSecret",
        summary: "Rotate a webhook endpoint's secret",
        description:
          "A new secret signs from now on; the old one keeps signing too (a second signature in " +
          "`webhook-signature`) for `graceSeconds`, so receivers holding either secret verify.",
        tags: ["webhooks"],
        params: IdParams,
        body: RotateSecret,
        response: { 200: WebhookSecretView, ...errors },
      },
    },
    async (request) => {
      const id = requireId("webhook_endpoint", request.params.id);
      const rotated = await webhooks.rotateEndpointSecret(
        request.principal.userId,
        id,
        request.body.graceSeconds,
      );
      request.log.info({ endpointId: id }, "webhook endpoint secret rotated");
      return toWebhookSecretView(rotated);
    },
  );

  routes.get(
    "/webhook-endpoints/:id/deliveries",
    {
      schema: {
        operationId: "listWebhookDeliveries",
        summary: "An endpoint's messages and their attempts, newest first",
        tags: ["webhooks"],
        params: IdParams,
        querystring: PageQuery,
        response: { 200: WebhookMessagePage, ...errors },
      },
    },
    async (request) => {
      const id = requireId("webhook_endpoint", request.params.id);
      const userId = request.principal.userId;
      await webhooks.getEndpoint(userId, id);
      const { cursor, limit } = request.query;
      return messagePage({ userId, endpointId: id }, cursor, limit);
    },
  );

  routes.get(
    "/webhook-secret",
    {
      schema: {
        operationId: "getWebhookSecret",
        summary: "Your secret for per-request webhook URLs",
        description:
          "Deliveries to a job's or batch's `webhook.url` are signed with it (created on first use).",
        tags: ["webhooks"],
        response: { 200: WebhookSecretView, 401: ErrorResponse },
      },
    },
    async (request) => toWebhookSecretView(await webhooks.userSecret(request.principal.userId)),
  );

  routes.post(
    "/webhook-secret/rotate",
    {
      schema: {
        operationId: "rotateWebhookSecret",
        summary: "Rotate your secret for per-request webhook URLs",
        tags: ["webhooks"],
        body: RotateSecret,
        response: { 200: WebhookSecretView, 400: ErrorResponse, 401: ErrorResponse },
      },
    },
    async (request) =>
      toWebhookSecretView(
        await webhooks.rotateUserSecret(request.principal.userId, request.body.graceSeconds),
      ),
  );

  routes.get(
    "/webhook-messages",
    {
      schema: {
        operationId: "listWebhookMessages",
        summary: "Your webhook messages (endpoint and per-request), newest first",
        tags: ["webhooks"],
        querystring: MessageQuery,
        response: { 200: WebhookMessagePage, 400: ErrorResponse, 401: ErrorResponse },
      },
    },
    async (request) => {
      const { cursor, limit, jobId, batchId } = request.query;
      const empty = { object: "list" as const, data: [], nextCursor: null };
      if ((jobId !== undefined && !isId(jobId)) || (batchId !== undefined && !isId(batchId))) return empty;
      return messagePage({ userId: request.principal.userId, jobId, batchId }, cursor, limit);
    },
  );

  routes.post(
    "/webhook-messages/:id/redeliver",
    {
      schema: {
        operationId: "redeliverWebhookMessage",
        summary: "Deliver a message again",
        description:
          "Same `webhook-id` (receivers deduplicate on it), a fresh retry schedule. 409 while it is still pending " +
          "or its endpoint is disabled.",
        tags: ["webhooks"],
        params: IdParams,
        response: { 202: WebhookMessageView, 409: ErrorResponse, ...errors },
      },
    },
    async (request, reply) => {
      const id = requireId("webhook_message", request.params.id);
      const message = await webhooks.redeliver(request.principal.userId, id);
      // Lost with Redis, or the enqueue fails: the relay queues it (it is due now).
      await webhookQueue.enqueue(message, message.attempts + 1).catch((error: unknown) => {
        request.log.warn({ err: error, messageId: id }, "redelivery enqueue failed; the relay will queue it");
      });
      return reply.status(202).send(toWebhookMessageView(message));
    },
  );
}
