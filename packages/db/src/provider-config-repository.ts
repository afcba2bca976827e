import { GenqError, NotFoundError, newId, type SecretBox } from "@genq/core";
import type { Database } from "./client.ts";
import { Prisma } from "./generated/prisma/client.ts";
import { isUniqueViolation } from "./prisma-errors.ts";
import { providerKeyHint } from "./user-provider-key-repository.ts";

type Transaction = Prisma.TransactionClient;
type Json = Record<string, unknown>;

/** What stands in for a secret wherever stored configuration leaves the database unopened. */
export const MASKED_KEY = "********";

/**
 * The database layer of the provider configuration, in the providers file's shape
 * (decision 0023). Structurally the `ProviderConfigOverlay` of `@genq/providers`.
 */
export interface ManagedConfigLayer {
  version: number;
  providers: Array<{ name: string } & Json>;
  disabledProviders: string[];
  routes: Array<{ name: string } & Json>;
  disabledRoutes: string[];
  /** The price row id of each model priced here, by `provider/model`. */
  priceVersions: Record<string, string>;
}

/** Checks a prospective layer (merged with the providers file) and throws when it is invalid. */
export type ManagedConfigValidator = (layer: ManagedConfigLayer) => void;

/** Who changes the configuration: the operator's user name, recorded in the audit log. */
export interface ConfigActor {
  actor: string;
}

/** A provider's own fields as the file names them (all but name, type, keys and models). */
export interface ManagedProviderFields {
  baseUrl?: unknown;
  timeoutMs?: unknown;
  defaultModel?: unknown;
  options?: unknown;
  acceptsUserKeys?: unknown;
  userKeyLimits?: unknown;
}

/** A key to add: its secret (absent for a mock) and its limits. */
export interface ManagedKeyInput {
  /** The key's id in the router; default `key-<8 characters of its row id>`. */
  name?: string | undefined;
  apiKey?: string | undefined;
  priority?: number | undefined;
  rpm?: number | null | undefined;
  tpm?: number | null | undefined;
  rpd?: number | null | undefined;
  disabled?: boolean | undefined;
}

/** A model to add or change: the file's model fields, its price apart (a new price is a new version). */
export interface ManagedModelInput {
  model: string;
  settings: Json;
  /** The file's `price` map; absent keeps the current price (or none, for a zeroCost model). */
  price?: Json | undefined;
}

/** A route as the file writes it. */
export interface ManagedRouteInput {
  name: string;
  strategy?: string | undefined;
  targets: Json[];
  disabled?: boolean | undefined;
}

/** A managed provider as the admin API shows it: hints, never secrets; header values masked. */
export interface ManagedProviderView {
  id: string;
  name: string;
  type: string;
  settings: Json;
  disabled: boolean;
  modelSync: {
    checkedAt: Date;
    models?: string[];
    errorCode?: string;
    message?: string;
  } | null;
  keys: ManagedKeyView[];
  models: ManagedModelView[];
  createdAt: Date;
  updatedAt: Date;
}

/** A managed key: its hint and the last validation, never the secret. */
export interface ManagedKeyView {
  id: string;
  name: string;
  hint: string;
  priority: number;
  rpm: number | null;
  tpm: number | null;
  rpd: number | null;
  disabled: boolean;
  check: {
    status: "valid" | "invalid";
    checkedAt: Date;
    errorCode?: string;
    providerCode?: string;
    httpStatus?: number;
    message?: string;
  } | null;
}

/** A managed model with the price in force and its version. */
export interface ManagedModelView {
  id: string;
  model: string;
  settings: Json;
  price: Json | null;
  priceVersion: string | null;
}

/** One price version of a model. */
export interface PriceVersionView {
  id: string;
  provider: string;
  model: string;
  price: Json;
  createdBy: string;
  createdAt: Date;
}

/** A managed route. */
export interface ManagedRouteView {
  id: string;
  name: string;
  strategy: string;
  targets: Json[];
  disabled: boolean;
}

/** An audit log entry. */
export interface ConfigAuditEntry {
  id: string;
  at: Date;
  actor: string;
  action: string;
  entityType: string;
  entityId: string;
  entityName: string;
  before: unknown;
  after: unknown;
  configVersion: number;
}

/** The outcome of a key validation or a model sync, as a worker found it. */
export type KeyCheckRecord =
  | { valid: true }
  | { valid: false; errorCode: string; providerCode?: string; httpStatus?: number; message: string };

/** Options for {@link ProviderConfigRepository}. */
export interface ProviderConfigRepositoryOptions {
  db: Database;
  /** Seals keys on add, opens them for workers. Without one, keys with a secret cannot be added. */
  secretBox?: SecretBox | undefined;
}

const PROVIDER_INCLUDE = {
  keys: { orderBy: [{ priority: "asc" }, { createdAt: "asc" }] },
  models: { orderBy: { createdAt: "asc" } },
} as const satisfies Prisma.ManagedProviderInclude;

type ProviderRow = Prisma.ManagedProviderGetPayload<{ include: typeof PROVIDER_INCLUDE }>;
type KeyRow = ProviderRow["keys"][number];

/**
 * The provider configuration kept in PostgreSQL (decision 0023): providers, their
 * sealed keys, models with versioned prices, routes, the configuration version
 * and the audit log. Every change runs in one transaction that serializes on the
 * version row, applies the change, hands the resulting layer to the validator
 * (which merges it with the providers file and checks it with the file's schema),
 * raises the version and writes the audit entry; an invalid change rolls back, so
 * nothing invalid is ever stored.
 */
export class ProviderConfigRepository {
  readonly #db: Database;
  readonly #box: SecretBox | undefined;

  constructor(options: ProviderConfigRepositoryOptions) {
    this.#db = options.db;
    this.#box = options.secretBox;
  }

  /** The configuration version: one indexed row, cheap enough to poll. */
  async currentVersion(): Promise<number> {
    const row = await this.#db.providerConfigState.findUnique({
      where: { id: 1 },
      select: { version: true },
    });
    return Number(row?.version ?? 0);
  }

  /**
   * The layer the workers merge over the providers file, secrets opened (`open`)
   * or masked (`mask`, for validation in the API).
   */
  async loadLayer(secrets: "open" | "mask"): Promise<ManagedConfigLayer> {
    return this.#db.$transaction((tx) => this.#layer(tx, secrets));
  }

  // -------------------------------------------------------------------------
  // Reads

  async listProviders(): Promise<ManagedProviderView[]> {
    const rows = await this.#db.managedProvider.findMany({
      include: PROVIDER_INCLUDE,
      orderBy: { name: "asc" },
    });
    return Promise.all(rows.map((row) => this.#providerView(this.#db, row)));
  }

  async getProvider(name: string): Promise<ManagedProviderView> {
    const row = await this.#providerRow(this.#db, name);
    return this.#providerView(this.#db, row);
  }

  async listRoutes(): Promise<ManagedRouteView[]> {
    const rows = await this.#db.managedRoute.findMany({ orderBy: { name: "asc" } });
    return rows.map(routeView);
  }

  /** Every price version of a model, newest first. */
  async listPriceVersions(provider: string, model: string): Promise<PriceVersionView[]> {
    const rows = await this.#db.managedModelPrice.findMany({
      where: { provider, model },
      orderBy: { id: "desc" },
    });
    return rows.map((row) => ({ ...row, price: row.price as Json }));
  }

  /** Audit entries, newest first; `before` is the id of the last entry of the previous page. */
  async listAudit(options: { limit: number; before?: string | undefined }): Promise<{
    entries: ConfigAuditEntry[];
    nextCursor: string | null;
  }> {
    const rows = await this.#db.providerConfigAudit.findMany({
      ...(options.before === undefined ? {} : { where: { id: { lt: options.before } } }),
      orderBy: { id: "desc" },
      take: options.limit + 1,
    });
    const page = rows.slice(0, options.limit);
    return {
      entries: page.map((row) => ({ ...row, configVersion: Number(row.configVersion) })),
      nextCursor: rows.length > options.limit ? (page.at(-1)?.id ?? null) : null,
    };
  }

  // -------------------------------------------------------------------------
  // Changes

  async createProvider(
    who: ConfigActor,
    input: {
      name: string;
      type: string;
      settings: ManagedProviderFields;
      disabled?: boolean | undefined;
      keys?: ManagedKeyInput[] | undefined;
      models?: ManagedModelInput[] | undefined;
    },
    validate: ManagedConfigValidator,
  ): Promise<ManagedProviderView> {
    return this.#change(who, validate, async (tx) => {
      const id = newId();
      try {
        await tx.managedProvider.create({
          data: {
            id,
            name: input.name,
            type: input.type,
            settings: input.settings as Prisma.InputJsonObject,
            disabled: input.disabled ?? false,
          },
        });
      } catch (error) {
        if (isUniqueViolation(error)) {
          throw new GenqError(
            "conflict",
            `provider "${input.name}" already exists in the database; update it`,
          );
        }
        throw error;
      }
      for (const key of input.keys ?? []) await this.#insertKey(tx, id, key);
      for (const model of input.models ?? []) await this.#insertModel(tx, id, input.name, model, who.actor);
      const after = await this.#providerView(tx, await this.#providerRow(tx, input.name));
      return {
        action: "provider.create",
        entity: entityOf("provider", after),
        before: null,
        after,
        result: after,
      };
    });
  }

  async updateProvider(
    who: ConfigActor,
    name: string,
    input: { settings?: ManagedProviderFields | undefined; disabled?: boolean | undefined },
    validate: ManagedConfigValidator,
  ): Promise<ManagedProviderView> {
    return this.#change(who, validate, async (tx) => {
      const row = await this.#providerRow(tx, name);
      const before = await this.#providerView(tx, row);
      await tx.managedProvider.update({
        where: { id: row.id },
        data: {
          ...(input.settings === undefined
            ? {}
            : {
                settings: withoutNulls({
                  ...(row.settings as Json),
                  ...input.settings,
                }) as Prisma.InputJsonObject,
              }),
          ...(input.disabled === undefined ? {} : { disabled: input.disabled }),
          updatedAt: new Date(),
        },
      });
      const after = await this.#providerView(tx, await this.#providerRow(tx, name));
      const action =
        input.disabled === true
          ? "provider.disable"
          : input.disabled === false
            ? "provider.enable"
            : "provider.update";
      return { action, entity: entityOf("provider", after), before, after, result: after };
    });
  }

  async deleteProvider(who: ConfigActor, name: string, validate: ManagedConfigValidator): Promise<void> {
    await this.#change(who, validate, async (tx) => {
      const row = await this.#providerRow(tx, name);
      const before = await this.#providerView(tx, row);
      await tx.managedProvider.delete({ where: { id: row.id } });
      return {
        action: "provider.delete",
        entity: entityOf("provider", before),
        before,
        after: null,
        result: undefined,
      };
    });
  }

  async addKey(
    who: ConfigActor,
    providerName: string,
    input: ManagedKeyInput,
    validate: ManagedConfigValidator,
  ): Promise<ManagedKeyView> {
    return this.#change(who, validate, async (tx) => {
      const provider = await this.#providerRow(tx, providerName);
      const row = await this.#insertKey(tx, provider.id, input);
      const after = keyView(row);
      return {
        action: "key.create",
        entity: keyEntity(providerName, after),
        before: null,
        after,
        result: after,
      };
    });
  }

  async updateKey(
    who: ConfigActor,
    providerName: string,
    keyId: string,
    input: Omit<ManagedKeyInput, "name">,
    validate: ManagedConfigValidator,
  ): Promise<ManagedKeyView> {
    return this.#change(who, validate, async (tx) => {
      const row = await this.#keyRow(tx, providerName, keyId);
      const before = keyView(row);
      const sealed = input.apiKey === undefined ? {} : this.#seal(row.id, input.apiKey);
      const updated = await tx.managedProviderKey.update({
        where: { id: row.id },
        data: {
          ...sealed,
          ...definedOnly({
            priority: input.priority,
            rpm: input.rpm,
            tpm: input.tpm,
            rpd: input.rpd,
            disabled: input.disabled,
          }),
          // A new secret has not been checked yet.
          ...(input.apiKey === undefined ? {} : NO_CHECK),
          updatedAt: new Date(),
        },
      });
      const after = keyView(updated);
      const action =
        input.disabled === true ? "key.disable" : input.disabled === false ? "key.enable" : "key.update";
      return { action, entity: keyEntity(providerName, after), before, after, result: after };
    });
  }

  async deleteKey(
    who: ConfigActor,
    providerName: string,
    keyId: string,
    validate: ManagedConfigValidator,
  ): Promise<void> {
    await this.#change(who, validate, async (tx) => {
      const row = await this.#keyRow(tx, providerName, keyId);
      await tx.managedProviderKey.delete({ where: { id: row.id } });
      const before = keyView(row);
      return {
        action: "key.delete",
        entity: keyEntity(providerName, before),
        before,
        after: null,
        result: undefined,
      };
    });
  }

  /** Adds a model, or changes one: new settings apply as given; a new price becomes a new price version. */
  async putModel(
    who: ConfigActor,
    providerName: string,
    input: ManagedModelInput,
    validate: ManagedConfigValidator,
  ): Promise<ManagedModelView> {
    return this.#change(who, validate, async (tx) => {
      const provider = await this.#providerRow(tx, providerName);
      const existing = provider.models.find((model) => model.model === input.model);
      if (existing === undefined) {
        await this.#insertModel(tx, provider.id, providerName, input, who.actor);
        const after = await this.#modelView(tx, providerName, input.model);
        return {
          action: "model.create",
          entity: modelEntity(providerName, after),
          before: null,
          after,
          result: after,
        };
      }
      const before = await this.#modelView(tx, providerName, input.model);
      const samePrice =
        input.price === undefined || JSON.stringify(input.price) === JSON.stringify(before.price);
      const priceId = samePrice
        ? existing.currentPriceId
        : await this.#insertPrice(tx, existing.id, providerName, input.model, input.price!, who.actor);
      await tx.managedModel.update({
        where: { id: existing.id },
        data: {
          settings: input.settings as Prisma.InputJsonObject,
          currentPriceId: input.settings.zeroCost === true && input.price === undefined ? null : priceId,
          updatedAt: new Date(),
        },
      });
      const after = await this.#modelView(tx, providerName, input.model);
      const action = samePrice ? "model.update" : "model.price";
      return { action, entity: modelEntity(providerName, after), before, after, result: after };
    });
  }

  async deleteModel(
    who: ConfigActor,
    providerName: string,
    model: string,
    validate: ManagedConfigValidator,
  ): Promise<void> {
    await this.#change(who, validate, async (tx) => {
      const before = await this.#modelView(tx, providerName, model);
      await tx.managedModel.delete({ where: { id: before.id } });
      return {
        action: "model.delete",
        entity: modelEntity(providerName, before),
        before,
        after: null,
        result: undefined,
      };
    });
  }

  /** Creates the route, or replaces the one of the same name. */
  async putRoute(
    who: ConfigActor,
    input: ManagedRouteInput,
    validate: ManagedConfigValidator,
  ): Promise<ManagedRouteView> {
    return this.#change(who, validate, async (tx) => {
      const existing = await tx.managedRoute.findUnique({ where: { name: input.name } });
      const data = {
        strategy: input.strategy ?? "priority",
        targets: input.targets as Prisma.InputJsonArray,
        disabled: input.disabled ?? false,
        updatedAt: new Date(),
      };
      const row =
        existing === null
          ? await tx.managedRoute.create({ data: { id: newId(), name: input.name, ...data } })
          : await tx.managedRoute.update({ where: { id: existing.id }, data });
      const before = existing === null ? null : routeView(existing);
      const after = routeView(row);
      const action = existing === null ? "route.create" : "route.update";
      return { action, entity: { type: "route", id: row.id, name: row.name }, before, after, result: after };
    });
  }

  async deleteRoute(who: ConfigActor, name: string, validate: ManagedConfigValidator): Promise<void> {
    await this.#change(who, validate, async (tx) => {
      const existing = await tx.managedRoute.findUnique({ where: { name } });
      if (existing === null) throw new NotFoundError("route", name);
      await tx.managedRoute.delete({ where: { id: existing.id } });
      const before = routeView(existing);
      return {
        action: "route.delete",
        entity: { type: "route", id: existing.id, name },
        before,
        after: null,
        result: undefined,
      };
    });
  }

  // -------------------------------------------------------------------------
  // Checks run by workers

  /** The provider's entry with one key (opened), for a worker to check it; undefined when either is gone. */
  async openKeyForCheck(
    keyRowId: string,
  ): Promise<{ provider: { name: string } & Json; keyName: string } | undefined> {
    const key = await this.#db.managedProviderKey.findUnique({
      where: { id: keyRowId },
      include: { provider: true },
    });
    if (key === null) return undefined;
    return {
      keyName: key.name,
      provider: {
        name: key.provider.name,
        type: key.provider.type,
        ...(key.provider.settings as Json),
        keys: [this.#keyEntry(key, "open")],
      },
    };
  }

  /** The provider's entry with its first enabled key (opened), for a worker to list its models. */
  async openProviderForSync(name: string): Promise<({ name: string } & Json) | undefined> {
    const row = await this.#db.managedProvider.findUnique({ where: { name }, include: PROVIDER_INCLUDE });
    if (row === null) return undefined;
    const key = row.keys.find((candidate) => !candidate.disabled);
    return {
      name: row.name,
      type: row.type,
      ...(row.settings as Json),
      ...(key === undefined ? {} : { keys: [this.#keyEntry(key, "open")] }),
    };
  }

  async recordKeyCheck(keyRowId: string, check: KeyCheckRecord, at: Date = new Date()): Promise<void> {
    await this.#db.managedProviderKey.updateMany({
      where: { id: keyRowId },
      data: check.valid
        ? { ...NO_CHECK, checkStatus: "valid", checkedAt: at }
        : {
            checkStatus: "invalid",
            checkErrorCode: check.errorCode,
            checkProviderCode: check.providerCode ?? null,
            checkHttpStatus: check.httpStatus ?? null,
            checkMessage: check.message.slice(0, 500),
            checkedAt: at,
          },
    });
  }

  async recordModelSync(
    name: string,
    outcome: { models: string[] } | { errorCode: string; message: string },
    at: Date = new Date(),
  ): Promise<void> {
    await this.#db.managedProvider.updateMany({
      where: { name },
      data:
        "models" in outcome
          ? {
              modelsFound: outcome.models,
              modelsCheckedAt: at,
              modelsErrorCode: null,
              modelsErrorMessage: null,
            }
          : {
              modelsFound: Prisma.DbNull,
              modelsCheckedAt: at,
              modelsErrorCode: outcome.errorCode,
              modelsErrorMessage: outcome.message.slice(0, 500),
            },
    });
  }

  // -------------------------------------------------------------------------
  // Internals

  async #change<T>(
    who: ConfigActor,
    validate: ManagedConfigValidator,
    apply: (tx: Transaction) => Promise<{
      action: string;
      entity: { type: string; id: string; name: string };
      before: unknown;
      after: unknown;
      result: T;
    }>,
  ): Promise<T> {
    return this.#db.$transaction(async (tx) => {
      // Serializes changes, so each is validated against the one committed before it.
      const [state] = await tx.$queryRaw<Array<{ version: bigint }>>`
        SELECT version FROM provider_config_state WHERE id = 1 FOR UPDATE`;
      const outcome = await apply(tx);
      validate(await this.#layer(tx, "mask"));
      const version = (state?.version ?? 0n) + 1n;
      await tx.providerConfigState.upsert({
        where: { id: 1 },
        create: { id: 1, version, updatedAt: new Date() },
        update: { version, updatedAt: new Date() },
      });
      await tx.providerConfigAudit.create({
        data: {
          id: newId(),
          actor: who.actor,
          action: outcome.action,
          entityType: outcome.entity.type,
          entityId: outcome.entity.id,
          entityName: outcome.entity.name,
          before: toJson(outcome.before),
          after: toJson(outcome.after),
          configVersion: version,
        },
      });
      return outcome.result;
    });
  }

  async #layer(tx: Transaction, secrets: "open" | "mask"): Promise<ManagedConfigLayer> {
    const [state, providers, routes] = await Promise.all([
      tx.providerConfigState.findUnique({ where: { id: 1 } }),
      tx.managedProvider.findMany({ include: PROVIDER_INCLUDE, orderBy: { createdAt: "asc" } }),
      tx.managedRoute.findMany({ orderBy: { createdAt: "asc" } }),
    ]);
    const priceIds = providers.flatMap((provider) =>
      provider.models.flatMap((model) => (model.currentPriceId === null ? [] : [model.currentPriceId])),
    );
    const prices = new Map(
      (await tx.managedModelPrice.findMany({ where: { id: { in: priceIds } } })).map((row) => [row.id, row]),
    );
    const priceVersions: Record<string, string> = {};
    const enabled = providers.filter((provider) => !provider.disabled);
    return {
      version: Number(state?.version ?? 0),
      providers: enabled.map((provider) => {
        const keys = provider.keys.filter((key) => !key.disabled).map((key) => this.#keyEntry(key, secrets));
        const models = provider.models.map((model) => {
          const price = model.currentPriceId === null ? undefined : prices.get(model.currentPriceId);
          if (price !== undefined) priceVersions[`${provider.name}/${model.model}`] = price.id;
          return {
            id: model.model,
            ...(model.settings as Json),
            ...(price === undefined ? {} : { price: price.price }),
          };
        });
        return {
          name: provider.name,
          type: provider.type,
          ...(provider.settings as Json),
          ...(keys.length === 0 ? {} : { keys }),
          ...(models.length === 0 ? {} : { models }),
        };
      }),
      disabledProviders: providers.filter((provider) => provider.disabled).map((provider) => provider.name),
      routes: routes
        .filter((route) => !route.disabled)
        .map((route) => ({ name: route.name, strategy: route.strategy, targets: route.targets as Json[] })),
      disabledRoutes: routes.filter((route) => route.disabled).map((route) => route.name),
      priceVersions,
    };
  }

  #keyEntry(key: KeyRow, secrets: "open" | "mask"): Json {
    let apiKey: string | undefined;
    if (key.ciphertext !== null && key.encryptionKeyId !== null) {
      if (secrets === "mask") apiKey = MASKED_KEY;
      else {
        if (this.#box === undefined) {
          throw new GenqError(
            "service_unavailable",
            "stored provider keys need GENQ_ENCRYPTION_KEYS to be opened",
          );
        }
        apiKey = this.#box.open(
          { keyId: key.encryptionKeyId, ciphertext: key.ciphertext },
          keyContext(key.id),
        );
      }
    }
    return {
      id: key.name,
      priority: key.priority,
      ...(apiKey === undefined ? {} : { apiKey }),
      ...(key.rpm === null ? {} : { rpm: key.rpm }),
      ...(key.tpm === null ? {} : { tpm: key.tpm }),
      ...(key.rpd === null ? {} : { rpd: key.rpd }),
    };
  }

  #seal(rowId: string, apiKey: string) {
    if (this.#box === undefined) {
      throw new GenqError(
        "service_unavailable",
        "provider keys are stored encrypted: set GENQ_ENCRYPTION_KEYS",
      );
    }
    const sealed = this.#box.seal(apiKey, keyContext(rowId));
    return { encryptionKeyId: sealed.keyId, ciphertext: sealed.ciphertext, hint: providerKeyHint(apiKey) };
  }

  async #insertKey(tx: Transaction, providerId: string, input: ManagedKeyInput): Promise<KeyRow> {
    const id = newId();
    const secret =
      input.apiKey === undefined
        ? { encryptionKeyId: null, ciphertext: null, hint: "(no key)" }
        : this.#seal(id, input.apiKey);
    const name = input.name ?? `key-${id.slice(-8)}`;
    try {
      return await tx.managedProviderKey.create({
        data: {
          id,
          providerId,
          name,
          ...secret,
          priority: input.priority ?? 1,
          rpm: input.rpm ?? null,
          tpm: input.tpm ?? null,
          rpd: input.rpd ?? null,
          disabled: input.disabled ?? false,
        },
      });
    } catch (error) {
      if (isUniqueViolation(error))
        throw new GenqError("conflict", `the provider already has a key "${name}"`);
      throw error;
    }
  }

  async #insertModel(
    tx: Transaction,
    providerId: string,
    provider: string,
    input: ManagedModelInput,
    actor: string,
  ): Promise<void> {
    const id = newId();
    try {
      await tx.managedModel.create({
        data: { id, providerId, model: input.model, settings: input.settings as Prisma.InputJsonObject },
      });
    } catch (error) {
      if (isUniqueViolation(error))
        throw new GenqError("conflict", `the provider already has a model "${input.model}"; update it`);
      throw error;
    }
    if (input.price !== undefined) {
      const priceId = await this.#insertPrice(tx, id, provider, input.model, input.price, actor);
      await tx.managedModel.update({ where: { id }, data: { currentPriceId: priceId } });
    }
  }

  async #insertPrice(
    tx: Transaction,
    modelId: string,
    provider: string,
    model: string,
    price: Json,
    actor: string,
  ): Promise<string> {
    const id = newId();
    await tx.managedModelPrice.create({
      data: { id, modelId, provider, model, price: price as Prisma.InputJsonObject, createdBy: actor },
    });
    return id;
  }

  async #providerRow(tx: Transaction | Database, name: string): Promise<ProviderRow> {
    const row = await tx.managedProvider.findUnique({ where: { name }, include: PROVIDER_INCLUDE });
    if (row === null) throw new NotFoundError("provider", name);
    return row;
  }

  async #keyRow(tx: Transaction, providerName: string, keyId: string): Promise<KeyRow> {
    const provider = await this.#providerRow(tx, providerName);
    const row = provider.keys.find((key) => key.id === keyId || key.name === keyId);
    if (row === undefined) throw new NotFoundError("provider key", `${providerName}/${keyId}`);
    return row;
  }

  async #modelView(tx: Transaction, providerName: string, model: string): Promise<ManagedModelView> {
    const provider = await this.#providerRow(tx, providerName);
    const row = provider.models.find((candidate) => candidate.model === model);
    if (row === undefined) throw new NotFoundError("model", `${providerName}/${model}`);
    return modelView(tx, row);
  }

  async #providerView(tx: Transaction | Database, row: ProviderRow): Promise<ManagedProviderView> {
    return {
      id: row.id,
      name: row.name,
      type: row.type,
      settings: maskHeaders(row.settings as Json),
      disabled: row.disabled,
      modelSync:
        row.modelsCheckedAt === null
          ? null
          : {
              checkedAt: row.modelsCheckedAt,
              ...(row.modelsFound === null ? {} : { models: row.modelsFound as string[] }),
              ...(row.modelsErrorCode === null ? {} : { errorCode: row.modelsErrorCode }),
              ...(row.modelsErrorMessage === null ? {} : { message: row.modelsErrorMessage }),
            },
      keys: row.keys.map(keyView),
      models: await Promise.all(row.models.map((model) => modelView(tx, model))),
      createdAt: row.createdAt,
      updatedAt: row.updatedAt,
    };
  }
}

const NO_CHECK = {
  checkStatus: null,
  checkErrorCode: null,
  checkProviderCode: null,
  checkHttpStatus: null,
  checkMessage: null,
  checkedAt: null,
};

/** Binds a sealed key to its row: a ciphertext copied to another row does not open. */
function keyContext(rowId: string): string {
  return `managed-provider-key:${rowId}`;
}

function keyView(row: KeyRow): ManagedKeyView {
  return {
    id: row.id,
    name: row.name,
    hint: row.hint,
    priority: row.priority,
    rpm: row.rpm,
    tpm: row.tpm,
    rpd: row.rpd,
    disabled: row.disabled,
    check:
      row.checkStatus === null || row.checkedAt === null
        ? null
        : {
            status: row.checkStatus === "valid" ? "valid" : "invalid",
            checkedAt: row.checkedAt,
            ...(row.checkErrorCode === null ? {} : { errorCode: row.checkErrorCode }),
            ...(row.checkProviderCode === null ? {} : { providerCode: row.checkProviderCode }),
            ...(row.checkHttpStatus === null ? {} : { httpStatus: row.checkHttpStatus }),
            ...(row.checkMessage === null ? {} : { message: row.checkMessage }),
          },
  };
}

async function modelView(
  tx: Transaction | Database,
  row: ProviderRow["models"][number],
): Promise<ManagedModelView> {
  const price =
    row.currentPriceId === null
      ? null
      : await tx.managedModelPrice.findUnique({ where: { id: row.currentPriceId } });
  return {
    id: row.id,
    model: row.model,
    settings: row.settings as Json,
    price: price === null ? null : (price.price as Json),
    priceVersion: price?.id ?? null,
  };
}

function routeView(row: {
  id: string;
  name: string;
  strategy: string;
  targets: unknown;
  disabled: boolean;
}): ManagedRouteView {
  return {
    id: row.id,
    name: row.name,
    strategy: row.strategy,
    targets: row.targets as Json[],
    disabled: row.disabled,
  };
}

function entityOf(type: string, view: { id: string; name: string }) {
  return { type, id: view.id, name: view.name };
}

function keyEntity(provider: string, view: ManagedKeyView) {
  return { type: "key", id: view.id, name: `${provider}/${view.name}` };
}

function modelEntity(provider: string, view: ManagedModelView) {
  return { type: "model", id: view.id, name: `${provider}/${view.model}` };
}

/** Header values may be credentials: shown and audited as a mask. */
function maskHeaders(settings: Json): Json {
  const options = settings.options as { headers?: Record<string, unknown> } | undefined;
  if (options?.headers === undefined || options.headers === null) return settings;
  return {
    ...settings,
    options: {
      ...options,
      headers: Object.fromEntries(Object.keys(options.headers).map((name) => [name, MASKED_KEY])),
    },
  };
}

/** `null` in an update removes the field (back to the file's default). */
function withoutNulls(object: Json): Json {
  return Object.fromEntries(
    Object.entries(object).filter(([, value]) => value !== null && value !== undefined),
  );
}

function definedOnly<T extends Json>(object: T): Partial<T> {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined)) as Partial<T>;
}

function toJson(value: unknown): Prisma.InputJsonValue | typeof Prisma.DbNull {
  if (value === null || value === undefined) return Prisma.DbNull;
  return JSON.parse(JSON.stringify(value)) as Prisma.InputJsonValue;
}
