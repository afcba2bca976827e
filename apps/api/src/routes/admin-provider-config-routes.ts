import { NotFoundError, type SecretBox } from "@genq/core";
import type {
  ConfigAuditEntry,
  ManagedKeyView,
  ManagedModelView,
  ManagedProviderView,
  ManagedRouteView,
} from "@genq/db";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { type OperatorCredentials, requireOperator } from "../plugins/operator-auth.ts";
import { ProviderConfigService } from "../provider-config-service.ts";
import { ErrorResponse } from "./error-response.ts";

// ---------------------------------------------------------------------------
// Bodies. Field types only: the rules (names, URLs, prices, cross-field checks)
// are the providers file's, applied to the merged configuration with its messages.

/** The largest value a Postgres INTEGER column holds. */
const MAX_INT = 2_147_483_647;
const Limit = z.number().int().min(1).max(MAX_INT).nullable().optional();

const KeyBody = z
  .object({
    name: z
      .string()
      .min(1)
      .max(64)
      .optional()
      .describe("The key's id in the router; default `key-` and 8 characters"),
    apiKey: z
      .string()
      .min(1)
      .max(4_096)
      .optional()
      .describe("The secret; stored encrypted, never shown again"),
    priority: z.number().int().min(0).max(MAX_INT).optional().describe("Lower runs first; default 1"),
    rpm: Limit,
    tpm: Limit,
    rpd: Limit,
    disabled: z.boolean().optional(),
  })
  .meta({
    examples: [{ name: "primary", apiKey: "sk-live-0123456789abcdef", priority: 1, rpm: 500 }],
  });

const KeyPatchBody = KeyBody.omit({ name: true }).meta({
  examples: [{ priority: 2, rpm: 100 }, { disabled: true }],
});

const Price = z
  .object({
    input: z.number().optional(),
    cachedInput: z.number().optional(),
    output: z.number().optional(),
    perImage: z.number().optional(),
    images: z.record(z.string(), z.number()).optional(),
  })
  .describe("Micro-USD per million tokens (or per image), as in the providers file");

const ModelFields = {
  capabilities: z.array(z.string()).optional(),
  contextWindow: z.number().optional(),
  maxOutputTokens: z.number().optional(),
  zeroCost: z.boolean().optional(),
  image: z
    .object({
      sizes: z.array(z.string()).optional(),
      qualities: z.array(z.string()).optional(),
      maxImages: z.number().optional(),
    })
    .optional(),
  price: Price.optional().describe(
    "A new price creates a new price version; jobs keep the version they ran with",
  ),
};

const ModelBody = z.object(ModelFields).meta({
  examples: [{ capabilities: ["text"], price: { input: 150_000, output: 600_000 } }],
});

const ProviderFields = {
  baseUrl: z.string().nullable().optional(),
  timeoutMs: z.number().nullable().optional(),
  defaultModel: z.string().nullable().optional(),
  options: z.record(z.string(), z.unknown()).nullable().optional(),
  acceptsUserKeys: z.boolean().nullable().optional(),
  userKeyLimits: z
    .object({ rpm: z.number().optional(), tpm: z.number().optional(), rpd: z.number().optional() })
    .nullable()
    .optional(),
};

const CreateProviderBody = z
  .object({
    name: z.string().min(1).max(100),
    type: z.string().min(1).max(40).describe("openai, openai-compatible, anthropic, gemini or mock"),
    ...ProviderFields,
    disabled: z.boolean().optional(),
    keys: z.array(KeyBody).max(100).optional(),
    models: z
      .array(z.object({ id: z.string().min(1).max(200), ...ModelFields }))
      .max(500)
      .optional(),
  })
  .meta({
    examples: [
      {
        name: "acme",
        type: "openai-compatible",
        baseUrl: "https://llm.acme.example/v1",
        keys: [
          { name: "primary", apiKey: "sk-acme-0123456789abcdef", priority: 1 },
          { name: "backup", apiKey: "sk-acme-fedcba9876543210", priority: 2 },
        ],
        models: [{ id: "acme-chat", price: { input: 100_000, output: 300_000 } }],
      },
    ],
  });

const UpdateProviderBody = z.object({ ...ProviderFields, disabled: z.boolean().optional() }).meta({
  examples: [{ timeoutMs: 30_000 }, { disabled: true }],
  description: "Fields given replace the stored ones; null removes one (back to its default)",
});

const RouteBody = z
  .object({
    strategy: z.string().optional().describe("priority (default), cost, latency, weighted or least-busy"),
    targets: z
      .array(
        z.object({
          provider: z.string(),
          model: z.string().optional(),
          weight: z.number().optional(),
          tier: z.number().optional().describe("Fallback tier: all of tier 0 before tier 1"),
        }),
      )
      .max(100),
    disabled: z.boolean().optional(),
  })
  .meta({
    examples: [
      {
        strategy: "cost",
        targets: [
          { provider: "acme", model: "acme-chat", tier: 0 },
          { provider: "openai", model: "gpt-4o-mini", tier: 1 },
        ],
      },
    ],
  });

// ---------------------------------------------------------------------------
// Views.

const KeyView = z
  .object({
    id: z.string(),
    name: z.string(),
    hint: z.string().describe("A masked hint of the secret; the secret is never returned"),
    priority: z.number(),
    rpm: z.number().nullable(),
    tpm: z.number().nullable(),
    rpd: z.number().nullable(),
    disabled: z.boolean(),
    check: z
      .object({
        status: z.enum(["valid", "invalid"]),
        checkedAt: z.string(),
        errorCode: z.string().optional().describe("genq's code: auth_failed, credit_exhausted, ..."),
        providerCode: z.string().optional().describe("The provider's own error code, e.g. invalid_api_key"),
        httpStatus: z.number().optional(),
        message: z.string().optional(),
      })
      .nullable()
      .describe("The last validate result; null before the first"),
  })
  .meta({
    id: "ManagedKey",
    examples: [
      {
        id: "0193a0c4-5b7e-7d1a-9c3e-2f4b5a6c7d8e",
        name: "primary",
        hint: "sk-…cdef",
        priority: 1,
        rpm: 500,
        tpm: null,
        rpd: null,
        disabled: false,
        check: { status: "valid", checkedAt: "2026-12-03T14:00:00.000Z" },
      },
    ],
  });

const ModelView = z
  .object({
    id: z.string(),
    model: z.string(),
    settings: z.record(z.string(), z.unknown()),
    price: z.record(z.string(), z.unknown()).nullable(),
    priceVersion: z.string().nullable().describe("The id jobs record as their price version"),
  })
  .meta({
    id: "ManagedModel",
    examples: [
      {
        id: "0193a0c4-5b7e-7d1a-9c3e-2f4b5a6c7d8f",
        model: "acme-chat",
        settings: { capabilities: ["text"] },
        price: { input: 100_000, output: 300_000 },
        priceVersion: "0193a0c4-5b7e-7d1a-9c3e-2f4b5a6c7d90",
      },
    ],
  });

const ProviderView = z
  .object({
    id: z.string(),
    name: z.string(),
    type: z.string(),
    settings: z.record(z.string(), z.unknown()).describe("Header values are masked"),
    disabled: z.boolean(),
    modelSync: z
      .object({
        checkedAt: z.string(),
        models: z.array(z.string()).optional(),
        errorCode: z.string().optional(),
        message: z.string().optional(),
      })
      .nullable()
      .describe("The last sync-models result; null before the first"),
    keys: z.array(KeyView),
    models: z.array(ModelView),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({
    id: "ManagedProvider",
    examples: [
      {
        id: "0193a0c4-5b7e-7d1a-9c3e-2f4b5a6c7d80",
        name: "acme",
        type: "openai-compatible",
        settings: { baseUrl: "https://llm.acme.example/v1" },
        disabled: false,
        modelSync: null,
        keys: [],
        models: [],
        createdAt: "2026-12-03T14:00:00.000Z",
        updatedAt: "2026-12-03T14:00:00.000Z",
      },
    ],
  });

const RouteView = z
  .object({
    id: z.string(),
    name: z.string(),
    strategy: z.string(),
    targets: z.array(z.record(z.string(), z.unknown())),
    disabled: z.boolean(),
  })
  .meta({
    id: "ManagedRoute",
    examples: [
      {
        id: "0193a0c4-5b7e-7d1a-9c3e-2f4b5a6c7d81",
        name: "cheap",
        strategy: "cost",
        targets: [{ provider: "acme", model: "acme-chat" }],
        disabled: false,
      },
    ],
  });

const ConfigView = z
  .object({
    version: z.number().describe("Raised by every change; workers apply it within seconds"),
    providers: z.array(ProviderView),
    routes: z.array(RouteView),
  })
  .meta({ id: "ManagedProviderConfig", examples: [{ version: 3, providers: [], routes: [] }] });

const PriceVersionView = z
  .object({
    id: z.string(),
    provider: z.string(),
    model: z.string(),
    price: z.record(z.string(), z.unknown()),
    createdBy: z.string(),
    createdAt: z.string(),
  })
  .meta({ id: "PriceVersion" });

const PriceVersionList = z.object({ object: z.literal("list"), data: z.array(PriceVersionView) }).meta({
  examples: [
    {
      object: "list",
      data: [
        {
          id: "0193a0c4-5b7e-7d1a-9c3e-2f4b5a6c7d90",
          provider: "acme",
          model: "acme-chat",
          price: { input: 100_000, output: 300_000 },
          createdBy: "admin",
          createdAt: "2026-12-03T14:00:00.000Z",
        },
      ],
    },
  ],
});

const AuditEntryView = z
  .object({
    id: z.string(),
    at: z.string(),
    actor: z.string().describe("The operator's user name"),
    action: z.string().describe("e.g. provider.create, key.disable, model.price, route.delete"),
    entityType: z.string(),
    entityId: z.string(),
    entityName: z.string(),
    before: z.unknown().describe("The entity before the change, secrets masked; null for a creation"),
    after: z.unknown().describe("The entity after the change, secrets masked; null for a deletion"),
    configVersion: z.number(),
  })
  .meta({ id: "ProviderConfigAuditEntry" });

const AuditPage = z
  .object({ object: z.literal("list"), data: z.array(AuditEntryView), nextCursor: z.string().nullable() })
  .meta({
    examples: [
      {
        object: "list",
        data: [
          {
            id: "0193a0c4-5b7e-7d1a-9c3e-2f4b5a6c7d91",
            at: "2026-12-03T14:00:00.000Z",
            actor: "admin",
            action: "key.create",
            entityType: "key",
            entityId: "0193a0c4-5b7e-7d1a-9c3e-2f4b5a6c7d8e",
            entityName: "acme/primary",
            before: null,
            after: { name: "primary", hint: "sk-…cdef", priority: 1 },
            configVersion: 2,
          },
        ],
        nextCursor: null,
      },
    ],
  });

const TaskAccepted = z.object({ taskId: z.string(), status: z.literal("queued") }).meta({
  id: "ProviderCheckQueued",
  description: "A worker runs the check; its result appears on the key or provider",
  examples: [{ taskId: "17", status: "queued" }],
});

const ProviderParams = z.object({ provider: z.string().min(1).max(200) });
const KeyParams = z.object({ provider: z.string().min(1).max(200), keyId: z.string().min(1).max(200) });
const ModelParams = z.object({ provider: z.string().min(1).max(200), model: z.string().min(1).max(200) });
const RouteParams = z.object({ route: z.string().min(1).max(200) });
const AuditQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().uuid().optional().describe("nextCursor of the previous page"),
});

const iso = (date: Date) => date.toISOString();

function toKeyView(key: ManagedKeyView) {
  return { ...key, check: key.check === null ? null : { ...key.check, checkedAt: iso(key.check.checkedAt) } };
}

function toProviderView(provider: ManagedProviderView) {
  return {
    ...provider,
    modelSync:
      provider.modelSync === null
        ? null
        : { ...provider.modelSync, checkedAt: iso(provider.modelSync.checkedAt) },
    keys: provider.keys.map(toKeyView),
    createdAt: iso(provider.createdAt),
    updatedAt: iso(provider.updatedAt),
  };
}

function toAuditView(entry: ConfigAuditEntry) {
  return { ...entry, at: iso(entry.at) };
}

const toModelView = (model: ManagedModelView) => model;
const toRouteView = (route: ManagedRouteView) => route;

/** Options for {@link adminProviderConfigRoutes}. */
export interface AdminProviderConfigRoutesOptions extends OperatorCredentials {
  /** Seals provider keys; without it, adding a key with a secret answers 503. */
  secretBox: SecretBox | undefined;
}

const ADMIN = { tags: ["admin"], security: [{ operator: [] }] };
const AUTH_ERRORS = { 401: ErrorResponse, 429: ErrorResponse };
const CHANGE_ERRORS = {
  ...AUTH_ERRORS,
  400: ErrorResponse,
  404: ErrorResponse,
  409: ErrorResponse,
  503: ErrorResponse,
};

/**
 * Operator routes of the runtime provider configuration (decision 0023):
 * providers, their keys, models with versioned prices and routes, stored in
 * PostgreSQL over the providers file; each change is validated with the file's
 * rules before it is stored, audited, and reaches every worker within seconds.
 */
export async function adminProviderConfigRoutes(
  app: FastifyInstance,
  options: AdminProviderConfigRoutesOptions,
): Promise<void> {
  app.addHook("onRequest", requireOperator(options));
  const routes = app.withTypeProvider<ZodTypeProvider>();
  const service = new ProviderConfigService({
    db: app.genq.db,
    redis: app.genq.redis,
    prefix: app.genq.queues.prefix,
    secretBox: options.secretBox,
  });
  app.addHook("onClose", () => service.close());
  const config = service.repository;
  const who = { actor: options.user };

  routes.get(
    "/provider-config",
    {
      schema: {
        ...ADMIN,
        operationId: "getProviderConfig",
        summary: "The provider configuration stored in the database, and its version",
        response: { 200: ConfigView, ...AUTH_ERRORS },
      },
    },
    async () => {
      const [version, providers, managedRoutes] = await Promise.all([
        config.currentVersion(),
        config.listProviders(),
        config.listRoutes(),
      ]);
      return { version, providers: providers.map(toProviderView), routes: managedRoutes.map(toRouteView) };
    },
  );

  routes.post(
    "/providers",
    {
      schema: {
        ...ADMIN,
        operationId: "createProvider",
        summary: "Add a provider (with keys and priced models) to the running configuration",
        description:
          "A provider of the same name in the providers file is replaced by this one. The merged configuration is validated with the providers file's rules; a refusal answers 400 with the file's message in `error.details.issues`.",
        body: CreateProviderBody,
        response: { 201: ProviderView, ...CHANGE_ERRORS },
      },
    },
    async (request, reply) => {
      const { name, type, disabled, keys, models, ...settings } = request.body;
      const created = await service.change((validate) =>
        config.createProvider(
          who,
          {
            name,
            type,
            settings: withoutNullish(settings),
            disabled,
            keys,
            models: models?.map(({ id, price, ...fields }) => ({ model: id, settings: fields, price })),
          },
          validate,
        ),
      );
      return reply.status(201).send(toProviderView(created));
    },
  );

  routes.get(
    "/providers/:provider",
    {
      schema: {
        ...ADMIN,
        operationId: "getManagedProvider",
        summary: "A provider stored in the database: settings, key hints and checks, models and prices",
        params: ProviderParams,
        response: { 200: ProviderView, ...AUTH_ERRORS, 404: ErrorResponse },
      },
    },
    async (request) => toProviderView(await config.getProvider(request.params.provider)),
  );

  routes.patch(
    "/providers/:provider",
    {
      schema: {
        ...ADMIN,
        operationId: "updateProvider",
        summary: "Change, disable or enable a stored provider",
        description: "A disabled provider leaves the configuration and hides a file entry of the same name.",
        params: ProviderParams,
        body: UpdateProviderBody,
        response: { 200: ProviderView, ...CHANGE_ERRORS },
      },
    },
    async (request) => {
      const { disabled, ...settings } = request.body;
      const updated = await service.change((validate) =>
        config.updateProvider(
          who,
          request.params.provider,
          { settings: Object.keys(settings).length === 0 ? undefined : settings, disabled },
          validate,
        ),
      );
      return toProviderView(updated);
    },
  );

  routes.delete(
    "/providers/:provider",
    {
      schema: {
        ...ADMIN,
        operationId: "deleteProvider",
        summary: "Delete a stored provider (a file entry of the same name comes back)",
        params: ProviderParams,
        response: { 204: z.null(), ...CHANGE_ERRORS },
      },
    },
    async (request, reply) => {
      await service.change((validate) => config.deleteProvider(who, request.params.provider, validate));
      return reply.status(204).send(null);
    },
  );

  routes.post(
    "/providers/:provider/keys",
    {
      schema: {
        ...ADMIN,
        operationId: "addManagedProviderKey",
        summary: "Add an API key to a stored provider (sealed; only its hint is ever shown)",
        params: ProviderParams,
        body: KeyBody,
        response: { 201: KeyView, ...CHANGE_ERRORS },
      },
    },
    async (request, reply) => {
      const key = await service.change((validate) =>
        config.addKey(who, request.params.provider, request.body, validate),
      );
      return reply.status(201).send(toKeyView(key));
    },
  );

  routes.patch(
    "/providers/:provider/keys/:keyId",
    {
      schema: {
        ...ADMIN,
        operationId: "updateManagedProviderKey",
        summary: "Change a key's priority, limits or secret, or disable it",
        params: KeyParams,
        body: KeyPatchBody,
        response: { 200: KeyView, ...CHANGE_ERRORS },
      },
    },
    async (request) =>
      toKeyView(
        await service.change((validate) =>
          config.updateKey(who, request.params.provider, request.params.keyId, request.body, validate),
        ),
      ),
  );

  routes.delete(
    "/providers/:provider/keys/:keyId",
    {
      schema: {
        ...ADMIN,
        operationId: "deleteManagedProviderKey",
        summary: "Delete a stored key",
        params: KeyParams,
        response: { 204: z.null(), ...CHANGE_ERRORS },
      },
    },
    async (request, reply) => {
      await service.change((validate) =>
        config.deleteKey(who, request.params.provider, request.params.keyId, validate),
      );
      return reply.status(204).send(null);
    },
  );

  routes.post(
    "/providers/:provider/keys/:keyId/validate",
    {
      schema: {
        ...ADMIN,
        operationId: "validateManagedProviderKey",
        summary: "Have a worker check the key against the provider (lists its models)",
        description:
          "Answers 202 at once; the result (valid, or invalid with the provider's error code) appears in the key's `check`.",
        params: KeyParams,
        response: { 202: TaskAccepted, ...AUTH_ERRORS, 404: ErrorResponse },
      },
    },
    async (request, reply) => {
      const provider = await config.getProvider(request.params.provider);
      const key = provider.keys.find(
        (candidate) => candidate.id === request.params.keyId || candidate.name === request.params.keyId,
      );
      if (key === undefined) {
        throw new NotFoundError("provider key", `${request.params.provider}/${request.params.keyId}`);
      }
      const taskId = await service.enqueue({
        kind: "validate-key",
        keyId: key.id,
        requestedBy: options.user,
      });
      return reply.status(202).send({ taskId, status: "queued" as const });
    },
  );

  routes.post(
    "/providers/:provider/sync-models",
    {
      schema: {
        ...ADMIN,
        operationId: "syncProviderModels",
        summary: "Have a worker list the models the provider offers",
        description: "Answers 202 at once; the models found appear in the provider's `modelSync`.",
        params: ProviderParams,
        response: { 202: TaskAccepted, ...AUTH_ERRORS, 404: ErrorResponse },
      },
    },
    async (request, reply) => {
      await config.getProvider(request.params.provider);
      const taskId = await service.enqueue({
        kind: "sync-models",
        provider: request.params.provider,
        requestedBy: options.user,
      });
      return reply.status(202).send({ taskId, status: "queued" as const });
    },
  );

  routes.put(
    "/providers/:provider/models/:model",
    {
      schema: {
        ...ADMIN,
        operationId: "putProviderModel",
        summary: "Add or change a model of a stored provider; a new price is a new price version",
        params: ModelParams,
        body: ModelBody,
        response: { 200: ModelView, ...CHANGE_ERRORS },
      },
    },
    async (request) => {
      const { price, ...settings } = request.body;
      return toModelView(
        await service.change((validate) =>
          config.putModel(
            who,
            request.params.provider,
            { model: request.params.model, settings, price },
            validate,
          ),
        ),
      );
    },
  );

  routes.delete(
    "/providers/:provider/models/:model",
    {
      schema: {
        ...ADMIN,
        operationId: "deleteProviderModel",
        summary: "Delete a model of a stored provider (its price versions stay, for the jobs that used them)",
        params: ModelParams,
        response: { 204: z.null(), ...CHANGE_ERRORS },
      },
    },
    async (request, reply) => {
      await service.change((validate) =>
        config.deleteModel(who, request.params.provider, request.params.model, validate),
      );
      return reply.status(204).send(null);
    },
  );

  routes.get(
    "/providers/:provider/models/:model/prices",
    {
      schema: {
        ...ADMIN,
        operationId: "listModelPriceVersions",
        summary: "Every price version of a model, newest first",
        params: ModelParams,
        response: { 200: PriceVersionList, ...AUTH_ERRORS },
      },
    },
    async (request) => {
      const versions = await config.listPriceVersions(request.params.provider, request.params.model);
      return {
        object: "list" as const,
        data: versions.map((version) => ({ ...version, createdAt: iso(version.createdAt) })),
      };
    },
  );

  routes.put(
    "/routes/:route",
    {
      schema: {
        ...ADMIN,
        operationId: "putRoute",
        summary: "Create or replace a named route (strategy, targets, fallback tiers)",
        description: "A route of the same name in the providers file is replaced by this one.",
        params: RouteParams,
        body: RouteBody,
        response: { 200: RouteView, ...CHANGE_ERRORS },
      },
    },
    async (request) =>
      toRouteView(
        await service.change((validate) =>
          config.putRoute(who, { name: request.params.route, ...request.body }, validate),
        ),
      ),
  );

  routes.delete(
    "/routes/:route",
    {
      schema: {
        ...ADMIN,
        operationId: "deleteRoute",
        summary: "Delete a stored route (a file route of the same name comes back)",
        params: RouteParams,
        response: { 204: z.null(), ...CHANGE_ERRORS },
      },
    },
    async (request, reply) => {
      await service.change((validate) => config.deleteRoute(who, request.params.route, validate));
      return reply.status(204).send(null);
    },
  );

  routes.get(
    "/provider-config/audit",
    {
      schema: {
        ...ADMIN,
        operationId: "listProviderConfigAudit",
        summary: "Every change to the stored provider configuration, newest first (secrets masked)",
        querystring: AuditQuery,
        response: { 200: AuditPage, 400: ErrorResponse, ...AUTH_ERRORS },
      },
    },
    async (request) => {
      const page = await config.listAudit({ limit: request.query.limit, before: request.query.cursor });
      return { object: "list" as const, data: page.entries.map(toAuditView), nextCursor: page.nextCursor };
    },
  );
}

function withoutNullish<T extends Record<string, unknown>>(object: T): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(object).filter(([, value]) => value !== null && value !== undefined),
  );
}
