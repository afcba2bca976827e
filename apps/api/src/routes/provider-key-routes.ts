import { GenqError, type SecretBox } from "@genq/core";
import { UserProviderKeyRepository, type UserProviderKeySummary } from "@genq/db";
import { readRouterCatalog } from "@genq/providers";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { ErrorResponse } from "./error-response.ts";

/** Options for {@link providerKeyRoutes}. */
export interface ProviderKeyRoutesOptions {
  /** Seals stored keys; without it every route answers 503. */
  secretBox: SecretBox | undefined;
}

/** The shape of provider names in the workers' providers file. */
const PROVIDER_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

const ProviderName = z
  .string()
  .regex(PROVIDER_NAME, "must be lowercase letters, digits, '-' or '_' (a provider name the workers use)");

const PutProviderKey = z
  .object({
    provider: ProviderName,
    apiKey: z
      .string()
      .trim()
      .min(8, "must be at least 8 characters")
      .max(4_096, "must be at most 4096 characters")
      .describe("Your own key for the provider; stored encrypted, never returned or logged"),
  })
  .meta({ id: "PutProviderKey" });

const ProviderKey = z
  .object({
    id: z.string(),
    provider: z.string(),
    hint: z.string().describe("A vendor prefix and the last four characters, e.g. `sk-…abcd`"),
    createdAt: z.string(),
    lastUsedAt: z.string().nullable().describe("When a job last ran on this key"),
  })
  .meta({ id: "ProviderKey" });

const ProviderKeyList = z.object({ data: z.array(ProviderKey) }).meta({ id: "ProviderKeyList" });

const UNAVAILABLE_MESSAGE = "BYO keys need GENQ_ENCRYPTION_KEYS";

function toView(key: UserProviderKeySummary): z.infer<typeof ProviderKey> {
  return {
    id: key.id,
    provider: key.provider,
    hint: key.hint,
    createdAt: key.createdAt.toISOString(),
    lastUsedAt: key.lastUsedAt?.toISOString() ?? null,
  };
}

/**
 * Refuses a key for a provider the workers do not run, or whose operator has not
 * marked it as accepting users' keys (`acceptsUserKeys` in the providers file):
 * on the mock, a keyless server or a provider authenticated by operator headers,
 * a user's key would be checked by nobody, and its jobs would run quota-free.
 */
async function assertAcceptsUserKeys(app: FastifyInstance, provider: string): Promise<void> {
  const catalog = await readRouterCatalog(app.genq.redis, app.genq.queues.prefix);
  if (catalog === undefined) {
    throw new GenqError(
      "service_unavailable",
      "no worker has published its provider configuration yet, so no provider can take your key now; try again shortly",
    );
  }
  const accepting = catalog.providers
    .filter((candidate) => candidate.acceptsUserKeys === true)
    .map((candidate) => candidate.name);
  const details = { location: "body", field: "provider", accepting };
  if (!catalog.providers.some((candidate) => candidate.name === provider)) {
    const known = catalog.providers.map((candidate) => candidate.name);
    throw new GenqError(
      "invalid_request",
      `body.provider: the workers have no provider ${JSON.stringify(provider)}; known: ${known.join(", ")}; accepting your own keys: ${accepting.join(", ") || "none"}`,
      { details: { ...details, known } },
    );
  }
  if (!accepting.includes(provider)) {
    throw new GenqError(
      "invalid_request",
      `body.provider: provider ${JSON.stringify(provider)} does not accept users' own keys (its operator has not enabled acceptsUserKeys; the mock, keyless servers and providers authenticated by operator headers never do); providers that do: ${accepting.join(", ") || "none"}`,
      { details },
    );
  }
}

/**
 * `/v1/provider-keys`: the caller's own provider keys (BYO keys). Stored sealed with
 * AES-256-GCM; only a hint is ever shown. The API makes no provider calls, so a key
 * is not validated on save: a bad key shows up as the job's `auth_failed`.
 */
export async function providerKeyRoutes(
  app: FastifyInstance,
  options: ProviderKeyRoutesOptions,
): Promise<void> {
  const routes = app.withTypeProvider<ZodTypeProvider>();
  const keys =
    options.secretBox === undefined
      ? undefined
      : new UserProviderKeyRepository({ db: app.genq.db, secretBox: options.secretBox });
  const repository = (): UserProviderKeyRepository => {
    if (keys === undefined) throw new GenqError("service_unavailable", UNAVAILABLE_MESSAGE);
    return keys;
  };

  routes.post(
    "/provider-keys",
    {
      schema: {
        operationId: "putProviderKey",
        summary: "Store your own key for a provider",
        description:
          "Jobs routed to this provider then run on your key: they skip your plan's quota but still record usage and " +
          "cost, and they share the provider's rate limits and circuit breaker. Only providers whose operator accepts " +
          "users' keys take one (400 otherwise). One key per provider; storing another replaces it. The key is " +
          "encrypted at rest and never returned.",
        tags: ["provider-keys"],
        body: PutProviderKey,
        response: { 201: ProviderKey, 400: ErrorResponse, 401: ErrorResponse, 503: ErrorResponse },
      },
    },
    async (request, reply) => {
      const store = repository();
      const { provider, apiKey } = request.body;
      await assertAcceptsUserKeys(app, provider);
      const stored = await store.put({ userId: request.principal.userId, provider, apiKey });
      request.log.info({ provider, hint: stored.hint }, "provider key stored");
      return reply.status(201).send(toView(stored));
    },
  );

  routes.get(
    "/provider-keys",
    {
      schema: {
        operationId: "listProviderKeys",
        summary: "List your provider keys",
        description: "Hints only; a stored key is never returned.",
        tags: ["provider-keys"],
        response: { 200: ProviderKeyList, 401: ErrorResponse, 503: ErrorResponse },
      },
    },
    async (request) => {
      const list = await repository().list(request.principal.userId);
      return { data: list.map(toView) };
    },
  );

  routes.delete(
    "/provider-keys/:provider",
    {
      schema: {
        operationId: "deleteProviderKey",
        summary: "Delete your key for a provider",
        description: "Jobs for this provider then run on the system's keys (and count against your quota).",
        tags: ["provider-keys"],
        params: z.object({ provider: ProviderName }),
        response: {
          204: z.null(),
          400: ErrorResponse,
          401: ErrorResponse,
          404: ErrorResponse,
          503: ErrorResponse,
        },
      },
    },
    async (request, reply) => {
      const { provider } = request.params;
      if (!(await repository().delete(request.principal.userId, provider))) {
        throw new GenqError("not_found", `you have no key for provider ${provider}`, {
          details: { resource: "provider_key", id: provider },
        });
      }
      request.log.info({ provider }, "provider key deleted");
      return reply.status(204).send(null);
    },
  );
}
