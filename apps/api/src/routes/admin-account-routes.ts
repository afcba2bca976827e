import { isId, JobStatus, NotFoundError } from "@genq/core";
import {
  type Account,
  API_KEY_PREFIX,
  type ApiKeyInfo,
  MIN_API_KEY_SEARCH_PREFIX,
  PLANS,
  type Plan,
} from "@genq/db";
import type { FastifyBaseLogger, FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { publishApiKeyInvalidation } from "../api-key-cache.ts";
import { ProviderCallView, toProviderCallView } from "../job-view.ts";
import { type OperatorCredentials, requireOperator } from "../plugins/operator-auth.ts";
import { ErrorResponse } from "./error-response.ts";
import { decodeCursor, encodeCursor, listPage } from "./page-cursor.ts";

const PlanName = z.enum(PLANS as readonly [Plan, ...Plan[]]);

/** A user as operators see it. */
const UserView = z
  .object({
    id: z.string(),
    object: z.literal("user"),
    email: z.string(),
    plan: PlanName,
    disabled: z.boolean(),
    disabledAt: z.string().nullable().describe("When the user was disabled; its API keys no longer work"),
    createdAt: z.string(),
  })
  .meta({ id: "AdminUser" });
type UserView = z.infer<typeof UserView>;

/** An API key without its secret or hash. */
const ApiKeyView = z
  .object({
    id: z.string(),
    object: z.literal("api_key"),
    userId: z.string(),
    name: z.string().nullable(),
    prefix: z.string().describe("The visible start of the key (`gq_` and 8 characters); not secret"),
    createdAt: z.string(),
    lastUsedAt: z.string().nullable().describe("Updated at most once a minute"),
    revokedAt: z.string().nullable(),
  })
  .meta({ id: "AdminApiKey" });
type ApiKeyView = z.infer<typeof ApiKeyView>;

const ApiKeySecret = z.string().describe("The full API key; shown only in this response, never again");

const UserIdParams = z.object({ id: z.string().describe("The user id") });
const JobIdParams = z.object({ id: z.string().describe("The job id") });
const ApiKeyParams = z.object({
  idOrPrefix: z.string().describe("The key id, or its visible prefix (`gq_` and 8 characters)"),
});

const CreateUserBody = z
  .object({
    email: z.email().max(320),
    plan: PlanName.default("basic"),
  })
  .strict();

const UpdateUserBody = z
  .object({
    plan: PlanName.optional(),
    disabled: z
      .boolean()
      .optional()
      .describe("`true` disables the user (its API keys stop working); `false` enables it"),
  })
  .strict()
  .refine((body) => body.plan !== undefined || body.disabled !== undefined, {
    message: "give `plan`, `disabled` or both",
  });

const CreateApiKeyBody = z.object({ name: z.string().trim().min(1).max(100).optional() }).strict();

const UserListQuery = z
  .object({
    email: z.string().trim().min(1).max(320).optional().describe("Users whose email contains this text"),
    plan: PlanName.optional(),
    disabled: z
      .enum(["true", "false"])
      .transform((value) => value === "true")
      .optional()
      .describe("`true`: only disabled users; `false`: only enabled ones"),
    cursor: z.string().max(64).optional().describe("`nextCursor` of the previous page"),
    limit: z.coerce.number().int().min(1).max(100).default(20),
  })
  .strict();

const ApiKeySearchQuery = z
  .object({
    // The upper bound keeps full secrets (which start with the prefix) out of query strings and logs.
    prefix: z
      .string()
      .regex(/^[A-Za-z0-9_]+$/, "a key prefix has only letters, digits and `_`")
      .min(MIN_API_KEY_SEARCH_PREFIX)
      .max(API_KEY_PREFIX.length + 8)
      .describe("The start of a key's visible prefix, e.g. `gq_AbCd`"),
  })
  .strict();

const UserPage = listPage(UserView).meta({ id: "AdminUserPage" });
const ApiKeyList = z.object({ object: z.literal("list"), data: z.array(ApiKeyView) });
const CreatedUser = z.object({ user: UserView, key: ApiKeyView, apiKey: ApiKeySecret });
const CreatedApiKey = z.object({ key: ApiKeyView, apiKey: ApiKeySecret });

const JobCallLog = z
  .object({
    jobId: z.string(),
    userId: z.string(),
    status: JobStatus,
    calls: z
      .array(ProviderCallView)
      .describe("Every provider call of every attempt (retries, fallbacks), by attempt, then seq"),
  })
  .meta({ id: "AdminJobCallLog" });

function toUserView(user: Account): UserView {
  return {
    id: user.id,
    object: "user",
    email: user.email,
    plan: user.plan,
    disabled: user.disabledAt !== null,
    disabledAt: user.disabledAt?.toISOString() ?? null,
    createdAt: user.createdAt.toISOString(),
  };
}

function toApiKeyView(key: ApiKeyInfo): ApiKeyView {
  return {
    id: key.id,
    object: "api_key",
    userId: key.userId,
    name: key.name,
    prefix: key.prefix,
    createdAt: key.createdAt.toISOString(),
    lastUsedAt: key.lastUsedAt?.toISOString() ?? null,
    revokedAt: key.revokedAt?.toISOString() ?? null,
  };
}

/** A malformed id cannot name anything; answering 404 keeps it out of Postgres. */
function requireId(resource: string, id: string): string {
  if (!isId(id)) throw new NotFoundError(resource, id);
  return id;
}

/**
 * Operator routes for accounts (HTTP Basic, separate from users' API keys):
 * users (create, list, change plan, disable), their API keys (create, list,
 * search by prefix, revoke), and the provider call log of any job.
 */
export async function adminAccountRoutes(app: FastifyInstance, options: OperatorCredentials): Promise<void> {
  app.addHook("onRequest", requireOperator(options));
  const routes = app.withTypeProvider<ZodTypeProvider>();
  const { accounts, jobs } = app.genq;

  /**
   * Cancels a disabled user's pending work: a disabled account is usually abuse or
   * unpaid, so its work must not run later on a re-enable, nor hold quota and queue
   * room meanwhile. Removing the BullMQ entries is best effort: a worker that still
   * takes one finds the job canceled (or its owner disabled) and skips it.
   */
  async function stopPendingWork(userId: string, log: FastifyBaseLogger): Promise<void> {
    const { canceled, running } = await app.genq.lifecycle.cancelForDisabledUser(userId);
    const { queues } = app.genq;
    for (const job of running) await queues.publishCancel(job.id).catch(() => {});
    for (const job of canceled) await queues.removeWaiting(job.type, job.id);
    log.info({ userId, canceled: canceled.length, running: running.length }, "disabled user's work canceled");
  }
  const invalidationContext = (log: FastifyBaseLogger) => ({
    server: app.server,
    redis: app.genq.redis,
    prefix: app.genq.queues.prefix,
    log,
  });

  async function requireUser(id: string): Promise<Account> {
    const user = await accounts.findUser(requireId("user", id));
    if (user === null) throw new NotFoundError("user", id);
    return user;
  }

  routes.post(
    "/users",
    {
      schema: {
        operationId: "createUser",
        tags: ["admin"],
        summary: "Create a user with its first API key",
        description:
          "The key's secret (`apiKey`) is in this response only. An email already in use answers 409.",
        security: [{ operator: [] }],
        body: CreateUserBody,
        response: { 201: CreatedUser, 400: ErrorResponse, 401: ErrorResponse, 409: ErrorResponse },
      },
    },
    async (request, reply) => {
      const { user, key, apiKey } = await accounts.createUser(request.body);
      request.log.info({ userId: user.id, plan: user.plan }, "user created by an operator");
      return reply.status(201).send({ user: toUserView(user), key: toApiKeyView(key), apiKey });
    },
  );

  routes.get(
    "/users",
    {
      schema: {
        operationId: "listUsers",
        tags: ["admin"],
        summary: "List users, newest first",
        security: [{ operator: [] }],
        querystring: UserListQuery,
        response: { 200: UserPage, 400: ErrorResponse, 401: ErrorResponse },
      },
    },
    async (request) => {
      const { cursor, ...filters } = request.query;
      const page = await accounts.listUsers({
        ...filters,
        cursor: cursor === undefined ? undefined : decodeCursor(cursor),
      });
      return {
        object: "list" as const,
        data: page.users.map(toUserView),
        nextCursor: encodeCursor(page.nextCursor),
      };
    },
  );

  routes.get(
    "/users/:id",
    {
      schema: {
        operationId: "getUser",
        tags: ["admin"],
        summary: "Get a user",
        security: [{ operator: [] }],
        params: UserIdParams,
        response: { 200: UserView, 401: ErrorResponse, 404: ErrorResponse },
      },
    },
    async (request) => toUserView(await requireUser(request.params.id)),
  );

  routes.patch(
    "/users/:id",
    {
      schema: {
        operationId: "updateUser",
        tags: ["admin"],
        summary: "Change a user's plan, or disable or enable it",
        description:
          "Disabling sets `disabledAt` (kept when the user is already disabled), makes every API key " +
          "of the user answer 401, and cancels its pending work: queued jobs and batch items are canceled " +
          "(their holds released, `job.canceled` events sent), running batches end `canceled`, running jobs " +
          "are aborted. Enabling clears `disabledAt`; canceled work stays canceled.",
        security: [{ operator: [] }],
        params: UserIdParams,
        body: UpdateUserBody,
        response: { 200: UserView, 400: ErrorResponse, 401: ErrorResponse, 404: ErrorResponse },
      },
    },
    async (request) => {
      const { id } = request.params;
      const user = await accounts.updateUser(requireId("user", id), request.body);
      if (user === null) throw new NotFoundError("user", id);
      // A disabled user's keys must stop working now, and a new plan apply now, in every API process.
      await publishApiKeyInvalidation(invalidationContext(request.log), { userId: user.id });
      if (request.body.disabled === true) await stopPendingWork(user.id, request.log);
      request.log.info({ userId: id, ...request.body }, "user changed by an operator");
      return toUserView(user);
    },
  );

  routes.post(
    "/users/:id/api-keys",
    {
      schema: {
        operationId: "createApiKey",
        tags: ["admin"],
        summary: "Create another API key for a user",
        description: "The key's secret (`apiKey`) is in this response only. The body may be left out.",
        security: [{ operator: [] }],
        params: UserIdParams,
        // Fastify hands a request without a body to the schema as null.
        body: CreateApiKeyBody.nullish(),
        response: { 201: CreatedApiKey, 400: ErrorResponse, 401: ErrorResponse, 404: ErrorResponse },
      },
    },
    async (request, reply) => {
      const user = await requireUser(request.params.id);
      const name = request.body?.name;
      const { key, apiKey } = await accounts.createApiKey({
        userId: user.id,
        ...(name === undefined ? {} : { name }),
      });
      request.log.info({ userId: user.id, apiKeyId: key.id }, "API key created by an operator");
      return reply.status(201).send({ key: toApiKeyView(key), apiKey });
    },
  );

  routes.get(
    "/users/:id/api-keys",
    {
      schema: {
        operationId: "listUserApiKeys",
        tags: ["admin"],
        summary: "List a user's API keys, newest first (never their secrets)",
        security: [{ operator: [] }],
        params: UserIdParams,
        response: { 200: ApiKeyList, 401: ErrorResponse, 404: ErrorResponse },
      },
    },
    async (request) => {
      const user = await requireUser(request.params.id);
      return { object: "list" as const, data: (await accounts.listApiKeys(user.id)).map(toApiKeyView) };
    },
  );

  routes.get(
    "/api-keys",
    {
      schema: {
        operationId: "listApiKeys",
        tags: ["admin"],
        summary: "Find API keys by the start of their visible prefix",
        description: "At most 100 keys, ordered by prefix, each with its user id.",
        security: [{ operator: [] }],
        querystring: ApiKeySearchQuery,
        response: { 200: ApiKeyList, 400: ErrorResponse, 401: ErrorResponse },
      },
    },
    async (request) => ({
      object: "list" as const,
      data: (await accounts.findApiKeysByPrefix(request.query.prefix)).map(toApiKeyView),
    }),
  );

  routes.post(
    "/api-keys/:idOrPrefix/revoke",
    {
      schema: {
        operationId: "revokeApiKey",
        tags: ["admin"],
        summary: "Revoke an API key by id or visible prefix",
        description: "Revoking a revoked key answers the key unchanged.",
        security: [{ operator: [] }],
        params: ApiKeyParams,
        response: { 200: ApiKeyView, 401: ErrorResponse, 404: ErrorResponse },
      },
    },
    async (request) => {
      const { idOrPrefix } = request.params;
      if (!idOrPrefix.startsWith(API_KEY_PREFIX)) requireId("API key", idOrPrefix);
      const key = await accounts.revokeApiKey(idOrPrefix);
      if (key === null) throw new NotFoundError("API key", idOrPrefix);
      await publishApiKeyInvalidation(invalidationContext(request.log), { apiKeyId: key.id });
      request.log.info({ userId: key.userId, apiKeyId: key.id }, "API key revoked by an operator");
      return toApiKeyView(key);
    },
  );

  routes.get(
    "/jobs/:id/calls",
    {
      schema: {
        operationId: "getJobCallLog",
        tags: ["admin"],
        summary: "The provider call log of any user's job, across its attempts",
        security: [{ operator: [] }],
        params: JobIdParams,
        response: { 200: JobCallLog, 401: ErrorResponse, 404: ErrorResponse },
      },
    },
    async (request) => {
      const id = requireId("job", request.params.id);
      const job = await jobs.find(id);
      if (job === null) throw new NotFoundError("job", id);
      // The format of GET /v1/jobs/:id, with the providers' error text users do not get.
      const calls = (await jobs.listCalls(id)).map((call) => toProviderCallView(call, { details: true }));
      return { jobId: job.id, userId: job.userId, status: job.status, calls };
    },
  );
}
