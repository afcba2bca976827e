import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import {
  BatchOptions,
  BatchStatus,
  type CheckedBatchItem,
  CreateBatchRequest,
  checkBatchTier,
  GenqError,
  type ImageJobInput,
  isId,
  JobStatus,
  MAX_BATCH_ITEMS,
  NotFoundError,
  PRIORITIES,
  validateBatchItem,
} from "@genq/core";
import {
  type BatchCreation,
  BatchItemSpool,
  BatchRepository,
  type BatchResultRow,
  EconomyRepository,
  requestFingerprint,
  type UploadRecord,
  UploadRepository,
} from "@genq/db";
import { type RouterCatalog, readRouterCatalog } from "@genq/providers";
import { checkPlanPriority } from "@genq/quota";
import { checkWebhookUrl } from "@genq/webhooks";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { type BatchUploadLease, BatchUploadSlots } from "../batch-upload-slots.ts";
import {
  BatchAcceptedView,
  BatchResultView,
  BatchView,
  toBatchResultView,
  toBatchView,
} from "../batch-view.ts";
import { withImageLinks } from "../image-links.ts";
import { checkImageRequest } from "../image-request-check.ts";
import { checkImageUploads } from "../image-upload-check.ts";
import { toResultView } from "../job-result-view.ts";
import { jsonLines } from "../jsonl-lines.ts";
import { BatchItemLine, CreateBatchRequestDocument } from "../openapi/batch-request-schemas.ts";
import { SUBMISSION_ROUTE } from "../plugins/submission-rate-limit.ts";
import { worstCaseQuota } from "../worst-case-quota.ts";
import { ErrorResponse } from "./error-response.ts";
import { decodeCursor, encodeCursor, listPage } from "./page-cursor.ts";

/** The largest JSONL batch body by default (streamed, spooled to disk): 64 MiB. */
export const DEFAULT_BATCH_BODY_LIMIT_BYTES = 64 * 1024 * 1024;
/** The largest JSON batch body by default (parsed whole in memory): 16 MiB. */
export const DEFAULT_BATCH_JSON_BODY_LIMIT_BYTES = 16 * 1024 * 1024;
/** The longest line of a JSONL batch body by default (one item): 1 MiB. */
export const DEFAULT_BATCH_LINE_LIMIT_BYTES = 1024 * 1024;
/** Batch uploads one user may have in progress at once by default. */
export const DEFAULT_BATCH_UPLOADS_PER_USER = 2;

/** Options for {@link batchRoutes}. */
export interface BatchRoutesOptions {
  /** Prefix of links in responses; empty for relative links. */
  publicUrl: string;
  /** The largest JSONL body (read as a stream), in bytes. */
  bodyLimitBytes: number;
  /**
   * The largest JSON body, in bytes: it is parsed whole in memory, so it is
   * bounded lower than the streamed JSONL body.
   * @defaultValue {@link DEFAULT_BATCH_JSON_BODY_LIMIT_BYTES}
   */
  jsonBodyLimitBytes?: number | undefined;
  /** The longest JSONL line, in bytes. @defaultValue {@link DEFAULT_BATCH_LINE_LIMIT_BYTES} */
  lineLimitBytes?: number | undefined;
  /** Batch uploads per user at once, over all API processes. @defaultValue {@link DEFAULT_BATCH_UPLOADS_PER_USER} */
  uploadsPerUser?: number | undefined;
}

/** JSONL bodies: one item per line, the batch options in the query string. */
const JSONL_TYPES = ["application/x-ndjson", "application/jsonl"];
/** Rows read per query when streaming the JSONL results. */
const RESULTS_CHUNK = 1_000;
const BatchIdParams = z.object({ id: z.string().describe("The batch id") });

const IdempotencyHeaders = z.object({
  "idempotency-key": z
    .string()
    .min(1)
    .max(255, "Idempotency-Key must be at most 255 characters")
    .optional()
    .describe("Repeat a request safely: the same key and items return the same batch"),
});

const JsonlQuery = z
  .object({
    type: z.string().optional().describe("JSONL bodies only: `text` or `image`"),
    priority: z.string().optional().describe("JSONL bodies only; default `low`"),
    provider: z.string().optional().describe("JSONL bodies only"),
    model: z.string().optional().describe("JSONL bodies only"),
    webhookUrl: z.string().optional().describe("JSONL bodies only: where batch events are POSTed"),
    metadata: z.string().optional().describe("JSONL bodies only: a JSON object"),
    tier: z.string().optional().describe("JSONL bodies only: `online` (default) or `economy`"),
  })
  .strict();

const ListQuery = z
  .object({
    status: BatchStatus.optional(),
    cursor: z.string().max(64).optional().describe("`nextCursor` of the previous page"),
    limit: z.coerce.number().int().min(1).max(100).default(20),
  })
  .strict();

const ResultsQuery = z
  .object({
    status: JobStatus.optional().describe("Only items of this status (`failed` lists the failed items)"),
    cursor: z.string().max(64).optional().describe("`nextCursor` of the previous page"),
    limit: z.coerce.number().int().min(1).max(1_000).default(100),
  })
  .strict();

const BatchPage = listPage(BatchView).meta({ id: "BatchPage" });
const ResultsPage = listPage(BatchResultView).meta({ id: "BatchItemResultPage" });

function requireBatchId(id: string): string {
  if (!isId(id)) throw new NotFoundError("batch", id);
  return id;
}

/** Results cursors are item indexes (opaque to clients). */
function encodeIndexCursor(index: number | null): string | null {
  return index === null ? null : Buffer.from(`item:${index}`).toString("base64url");
}

function decodeIndexCursor(cursor: string): number {
  const match = /^item:(\d{1,9})$/.exec(Buffer.from(cursor, "base64url").toString("utf8"));
  if (match === null) {
    throw new GenqError("invalid_request", "querystring.cursor: not a cursor returned by this API", {
      details: { location: "querystring", field: "cursor" },
    });
  }
  return Number(match[1]);
}

/** A zod failure of the batch options or body, as the API's usual 400. */
function invalidRequest(location: string, error: z.ZodError): GenqError {
  const issues = error.issues.map((issue) => ({
    field: issue.path.join(".") || "(root)",
    code: issue.code,
    message: issue.message,
  }));
  const first = issues[0];
  const where = first === undefined ? location : `${location}.${first.field}`.replace(/\.\(root\)$/, "");
  return new GenqError("invalid_request", `${where}: ${first?.message ?? "invalid"}`, {
    details: { location, field: first?.field, issues },
  });
}

function tooManyItems(): GenqError {
  return new GenqError("payload_too_large", `a batch holds at most ${MAX_BATCH_ITEMS} items`, {
    details: { maxItems: MAX_BATCH_ITEMS },
  });
}

/** The raw items of a request, each with the text that goes into its fingerprint. */
interface RawItem {
  index: number;
  /** The parsed item, or undefined when the line was not JSON. */
  value: unknown;
  parseError?: string;
  fingerprint: () => string;
}

async function* jsonlItems(lines: AsyncIterable<string>): AsyncIterable<RawItem> {
  let index = 0;
  for await (const raw of lines) {
    const line = raw.trim();
    if (line === "") continue;
    if (index >= MAX_BATCH_ITEMS) throw tooManyItems();
    let value: unknown;
    let parseError: string | undefined;
    try {
      value = JSON.parse(line);
    } catch {
      parseError = "the line is not valid JSON";
    }
    yield { index, value, ...(parseError === undefined ? {} : { parseError }), fingerprint: () => line };
    index += 1;
  }
}

async function* arrayItems(items: readonly unknown[]): AsyncIterable<RawItem> {
  for (let index = 0; index < items.length; index++) {
    const value = items[index];
    yield { index, value, fingerprint: () => requestFingerprint(value) };
  }
}

/** The batch options of a JSONL request, from its query string. */
function jsonlOptions(query: z.infer<typeof JsonlQuery>): BatchOptions {
  let metadata: unknown;
  if (query.metadata !== undefined) {
    try {
      metadata = JSON.parse(query.metadata);
    } catch {
      throw new GenqError("invalid_request", "querystring.metadata: must be a JSON object", {
        details: { location: "querystring", field: "metadata" },
      });
    }
  }
  const parsed = BatchOptions.safeParse({
    type: query.type,
    ...(query.priority === undefined ? {} : { priority: query.priority }),
    ...(query.provider === undefined ? {} : { provider: query.provider }),
    ...(query.model === undefined ? {} : { model: query.model }),
    ...(metadata === undefined ? {} : { metadata }),
    ...(query.webhookUrl === undefined ? {} : { webhook: { url: query.webhookUrl } }),
    ...(query.tier === undefined ? {} : { tier: query.tier }),
  });
  if (!parsed.success) throw invalidRequest("querystring", parsed.error);
  return parsed.data;
}

/** What a batch request says, before its items are read. */
interface BatchRequest {
  options: BatchOptions;
  items: AsyncIterable<RawItem>;
}

/** The options and the (not yet read) items of a JSON or JSONL batch request. */
function readBatchRequest(
  body: unknown,
  query: z.infer<typeof JsonlQuery>,
  limits: { bodyLimitBytes: number; lineLimitBytes: number },
): BatchRequest {
  if (body instanceof Readable) {
    return {
      options: jsonlOptions(query),
      items: jsonlItems(
        jsonLines(body, { maxTotalBytes: limits.bodyLimitBytes, maxLineBytes: limits.lineLimitBytes }),
      ),
    };
  }
  if (Object.keys(query).length > 0) {
    throw new GenqError(
      "invalid_request",
      "querystring: batch options go in the JSON body (the query string is for JSONL bodies)",
      { details: { location: "querystring" } },
    );
  }
  if (Array.isArray((body as { items?: unknown } | null)?.items)) {
    if ((body as { items: unknown[] }).items.length > MAX_BATCH_ITEMS) throw tooManyItems();
  }
  const parsed = CreateBatchRequest.safeParse(body);
  if (!parsed.success) throw invalidRequest("body", parsed.error);
  const { items, ...rest } = parsed.data;
  return { options: rest, items: arrayItems(items) };
}

/** Upload ids checked per request are remembered up to this many (items often share one image). */
const CHECKED_UPLOADS_MEMO = 10_000;

/** `/v1/batches`: submit many items as one batch, follow it, read its results, cancel it. */
export async function batchRoutes(app: FastifyInstance, options: BatchRoutesOptions): Promise<void> {
  const routes = app.withTypeProvider<ZodTypeProvider>();
  const { db, lifecycle, redis, queues } = app.genq;
  const batches = new BatchRepository({ db, hooks: lifecycle.effects });
  const economy = new EconomyRepository({ db });
  const uploads = new UploadRepository({ db });
  const lineLimitBytes = options.lineLimitBytes ?? DEFAULT_BATCH_LINE_LIMIT_BYTES;
  const slots = new BatchUploadSlots({
    redis,
    prefix: queues.prefix,
    perUser: options.uploadsPerUser ?? DEFAULT_BATCH_UPLOADS_PER_USER,
  });
  const leases = new WeakMap<FastifyRequest, BatchUploadLease>();

  // The JSONL body is handed over as a stream and read line by line: memory stays flat.
  app.addContentTypeParser(JSONL_TYPES, (_request, payload, done) => done(null, payload));

  /**
   * Takes one of the user's upload slots before the body is read (a 429 when all
   * are taken), and gives it back when the request ends, however it ends.
   */
  const takeUploadSlot = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const lease = await slots.acquire(request.principal.userId).catch((error: unknown) => {
      // Like the rate limits: a Redis failure lets the upload through.
      request.log.warn({ err: error }, "could not count batch uploads; letting this one through");
      return null;
    });
    if (lease === undefined) {
      reply.header("retry-after", "5");
      throw new GenqError(
        "rate_limited",
        `too many batch uploads at once: at most ${slots.perUser} per user; wait for one to finish, then retry`,
        { details: { limit: slots.perUser } },
      );
    }
    if (lease === null) return;
    leases.set(request, lease);
    // However the exchange ends (even a connection cut mid-body that no hook reports), the slot comes back.
    reply.raw.once("close", () => {
      lease.release().catch(() => {});
    });
  };
  const releaseUploadSlot = async (request: FastifyRequest): Promise<void> => {
    await leases
      .get(request)
      ?.release()
      .catch(() => {});
  };

  routes.post(
    "/batches",
    {
      config: SUBMISSION_ROUTE,
      bodyLimit: options.jsonBodyLimitBytes ?? DEFAULT_BATCH_JSON_BODY_LIMIT_BYTES,
      onRequest: takeUploadSlot,
      onResponse: releaseUploadSlot,
      onRequestAbort: releaseUploadSlot,
      schema: {
        operationId: "createBatch",
        summary: "Submit a batch",
        description:
          "Up to 100,000 items of one type, each a job. Send JSON `{type, items: [...], priority?, provider?, " +
          "model?, webhook?, metadata?}` or JSONL (`Content-Type: application/x-ndjson`, one item per line, the " +
          "options in the query string). JSON bodies are smaller (default 16 MiB) than JSONL ones (default " +
          "64 MiB, each line at most 1 MiB): send big batches as JSONL. Each item is validated on its own: " +
          "invalid ones are listed by index and the valid ones run. 202 means every valid item is stored. " +
          "Items are released to the workers a few at a time per user, so a big batch never delays other jobs " +
          "by more than that. A user may upload a few batches at once (default 2; more get 429). Counts as " +
          "one submission for the rate limit.",
        tags: ["batches"],
        headers: IdempotencyHeaders,
        querystring: JsonlQuery,
        documentedBody: {
          description:
            "The items and options as JSON, or the items as JSONL with the options in the query string",
          content: {
            "application/json": CreateBatchRequestDocument,
            ...Object.fromEntries(JSONL_TYPES.map((type) => [type, BatchItemLine])),
          },
        },
        responseDescriptions: {
          200: "The batch of an earlier request with the same Idempotency-Key",
          202: "The batch is stored; its valid items will run",
        },
        response: {
          200: BatchAcceptedView,
          202: BatchAcceptedView,
          400: ErrorResponse,
          401: ErrorResponse,
          403: ErrorResponse,
          409: ErrorResponse,
          413: ErrorResponse,
          415: ErrorResponse,
          429: ErrorResponse,
        },
      },
    },
    async (request, reply) => {
      const userId = request.principal.userId;
      const { options: batchOptions, items } = readBatchRequest(request.body, request.query, {
        bodyLimitBytes: options.bodyLimitBytes,
        lineLimitBytes,
      });
      // Before any item is read: a refused priority or webhook URL stores nothing.
      checkPlanPriority(request.principal.plan, batchOptions.priority);
      checkBatchTier(batchOptions);
      if (batchOptions.webhook !== undefined)
        checkWebhookUrl(batchOptions.webhook.url, app.genq.webhookAllowlist);
      const idempotencyKey = request.headers["idempotency-key"];
      // A replay is answered whatever the quota says now: it spends nothing.
      const earlier =
        idempotencyKey === undefined ? null : await batches.findByIdempotencyKey(userId, idempotencyKey);
      const hash = idempotencyKey === undefined ? undefined : createHash("sha256");
      hash?.update(requestFingerprint(batchOptions));
      // Read and checked to the end before anything is stored: no transaction waits for the client.
      const spool = await BatchItemSpool.fromItems(
        checkItems(userId, batchOptions, items, { hash, checkQuota: earlier === null }),
      );
      try {
        const batch = { idempotencyKey, requestHash: hash?.digest("hex") };
        const outcome =
          earlier === null
            ? await batches.create(
                {
                  ...batch,
                  userId,
                  type: batchOptions.type,
                  priority: PRIORITIES[batchOptions.priority],
                  provider: batchOptions.provider,
                  model: batchOptions.model,
                  metadata: batchOptions.metadata,
                  webhookUrl: batchOptions.webhook?.url,
                  tier: batchOptions.tier,
                },
                spool,
              )
            : batches.repeat(earlier, batch, spool);
        return await answer(request, reply, outcome);
      } finally {
        await spool.close();
      }
    },
  );

  const answer = (
    request: FastifyRequest,
    reply: FastifyReply,
    { batch, created, invalidItems, invalidCount }: BatchCreation,
  ) => {
    if (created) {
      request.log.info({ batchId: batch.id, items: batch.total, invalid: invalidCount }, "batch accepted");
    }
    return reply
      .status(created ? 202 : 200)
      .send({ ...toBatchView(batch, 0, options.publicUrl), invalidItems, invalidCount });
  };

  /**
   * Validates each item (the image checks ask Postgres, outside any transaction),
   * feeds the request's fingerprint, and checks the quota once, with the first valid item.
   */
  async function* checkItems(
    userId: string,
    batchOptions: BatchOptions,
    items: AsyncIterable<RawItem>,
    step: { hash: ReturnType<typeof createHash> | undefined; checkQuota: boolean },
  ): AsyncIterable<CheckedBatchItem> {
    const catalog: RouterCatalog | undefined =
      batchOptions.type === "image"
        ? await readRouterCatalog(redis, queues.prefix).catch(() => undefined)
        : undefined;
    const ownedUploads = new Map<string, UploadRecord>();
    const ownsUpload: Pick<UploadRepository, "findOwned"> = {
      findOwned: async (owner, uploadId) => {
        const known = ownedUploads.get(uploadId);
        if (known !== undefined) return known;
        const found = await uploads.findOwned(owner, uploadId);
        if (found !== null && ownedUploads.size < CHECKED_UPLOADS_MEMO) ownedUploads.set(uploadId, found);
        return found;
      },
    };
    let quotaChecked = !step.checkQuota;
    for await (const raw of items) {
      step.hash?.update(raw.fingerprint());
      step.hash?.update("\n");
      const item = await checkItem(userId, batchOptions, catalog, ownsUpload, raw);
      // Refused only when not even one item fits now; the worker's reservation decides per item.
      if (item.valid && !quotaChecked) {
        quotaChecked = true;
        await app.genq.quota?.check({
          userId,
          ...worstCaseQuota({ type: batchOptions.type, input: item.input } as Parameters<
            typeof worstCaseQuota
          >[0]),
        });
      }
      yield item;
    }
  }

  const checkItem = async (
    userId: string,
    batchOptions: BatchOptions,
    catalog: RouterCatalog | undefined,
    ownsUpload: Pick<UploadRepository, "findOwned">,
    raw: RawItem,
  ): Promise<CheckedBatchItem> => {
    if (raw.parseError !== undefined) return { index: raw.index, valid: false, message: raw.parseError };
    const item = validateBatchItem(batchOptions.type, raw.index, raw.value);
    if (!item.valid || batchOptions.type !== "image") return item;
    const input = item.input as ImageJobInput;
    try {
      checkImageRequest(catalog, {
        type: "image",
        input,
        priority: batchOptions.priority,
        provider: batchOptions.provider,
        model: batchOptions.model,
      });
      await checkImageUploads(ownsUpload, userId, input);
    } catch (error) {
      if (!GenqError.is(error) || error.code !== "invalid_request") throw error;
      return { index: raw.index, valid: false, message: error.message.replace(/^body\.input\./, "") };
    }
    return item;
  };

  routes.get(
    "/batches/:id",
    {
      schema: {
        operationId: "getBatch",
        summary: "Get a batch",
        description: "Counts by status, progress, start and finish times and an ETA.",
        tags: ["batches"],
        params: BatchIdParams,
        response: { 200: BatchView, 401: ErrorResponse, 404: ErrorResponse },
      },
    },
    async (request) => {
      const batch = await batches.findForUser(request.principal.userId, requireBatchId(request.params.id));
      const active = batch.status === "running" ? await batches.countActive(batch.id) : 0;
      const cost = batch.tier === "economy" ? await economy.batchCost(batch.id) : null;
      return toBatchView(batch, active, options.publicUrl, new Date(), cost);
    },
  );

  routes.get(
    "/batches",
    {
      schema: {
        operationId: "listBatches",
        summary: "List batches, newest first",
        tags: ["batches"],
        querystring: ListQuery,
        response: { 200: BatchPage, 400: ErrorResponse, 401: ErrorResponse },
      },
    },
    async (request) => {
      const { status, cursor, limit } = request.query;
      const page = await batches.list(request.principal.userId, {
        status,
        cursor: cursor === undefined ? undefined : decodeCursor(cursor),
        limit,
      });
      // `active` is left at 0 in lists (one count per batch would make a page slow); GET the batch for it.
      return {
        object: "list" as const,
        data: page.batches.map((batch) => toBatchView(batch, 0, options.publicUrl)),
        nextCursor: encodeCursor(page.nextCursor),
      };
    },
  );

  /** A result row with links minted for image results. */
  const resultView = async (row: BatchResultRow): Promise<BatchResultView> => {
    const view = toBatchResultView(row);
    const { storage, assets, assetUrlTtlSeconds } = app.genq;
    if (row.type !== "image" || row.status !== "completed" || storage === undefined) return view;
    return {
      ...view,
      result: toResultView(
        "image",
        await withImageLinks(row.result, await assets.listForJob(row.id), storage, assetUrlTtlSeconds),
      ),
    };
  };

  const streamResults = (batchId: string, status: JobStatus | undefined): Readable =>
    Readable.from(
      (async function* () {
        let afterIndex: number | undefined;
        for (;;) {
          const rows = await batches.results(batchId, { afterIndex, limit: RESULTS_CHUNK, status });
          if (rows.length === 0) return;
          const views = await Promise.all(rows.map(resultView));
          yield views.map((view) => `${JSON.stringify(view)}\n`).join("");
          if (rows.length < RESULTS_CHUNK) return;
          afterIndex = rows.at(-1)?.itemIndex ?? undefined;
        }
      })(),
    );

  const wantsJsonl = (request: FastifyRequest) =>
    JSONL_TYPES.some((type) => (request.headers.accept ?? "").includes(type));

  routes.get(
    "/batches/:id/results",
    {
      schema: {
        operationId: "listBatchResults",
        summary: "Read a batch's results, in item order",
        description:
          "Paginated by item index. With `Accept: application/x-ndjson` the whole batch is streamed as JSONL " +
          "instead (see `/results.jsonl`).",
        tags: ["batches"],
        params: BatchIdParams,
        querystring: ResultsQuery,
        response: { 200: ResultsPage, 400: ErrorResponse, 401: ErrorResponse, 404: ErrorResponse },
        documentedResponses: {
          200: {
            description:
              "A page of results (JSON), or every result as JSONL with `Accept: application/x-ndjson`",
            content: { "application/x-ndjson": BatchResultView },
          },
        },
      },
    },
    async (request, reply) => {
      const batch = await batches.findForUser(request.principal.userId, requireBatchId(request.params.id));
      const { status, cursor, limit } = request.query;
      if (wantsJsonl(request)) {
        // A stream is sent as it is (no serializer); the typed reply only knows the JSON shapes.
        return reply.type("application/x-ndjson").send(streamResults(batch.id, status) as never);
      }
      const rows = await batches.results(batch.id, {
        afterIndex: cursor === undefined ? undefined : decodeIndexCursor(cursor),
        limit: limit + 1,
        status,
      });
      const hasMore = rows.length > limit;
      const page = hasMore ? rows.slice(0, limit) : rows;
      return {
        object: "list" as const,
        data: await Promise.all(page.map(resultView)),
        nextCursor: hasMore ? encodeIndexCursor(page.at(-1)?.itemIndex ?? null) : null,
      };
    },
  );

  routes.get(
    "/batches/:id/results.jsonl",
    {
      schema: {
        operationId: "downloadBatchResults",
        summary: "Download a batch's results as JSONL, in item order",
        description: "One result per line (`BatchResult`), streamed in item order.",
        tags: ["batches"],
        params: BatchIdParams,
        querystring: ResultsQuery.pick({ status: true }),
        response: { 401: ErrorResponse, 404: ErrorResponse },
        documentedResponses: {
          200: {
            description: "Every result, one `BatchItemResult` per line, in item order",
            headers: {
              "content-disposition": {
                description: 'attachment; filename="batch-<id>.jsonl"',
                type: "string",
              },
            },
            content: { "application/x-ndjson": BatchResultView },
          },
        },
      },
    },
    async (request, reply) => {
      const batch = await batches.findForUser(request.principal.userId, requireBatchId(request.params.id));
      return reply
        .type("application/x-ndjson")
        .header("content-disposition", `attachment; filename="batch-${batch.id}.jsonl"`)
        .send(streamResults(batch.id, request.query.status) as never);
    },
  );

  routes.post(
    "/batches/:id/cancel",
    {
      config: SUBMISSION_ROUTE,
      schema: {
        operationId: "cancelBatch",
        summary: "Cancel a batch",
        description:
          "Every item not started yet is canceled at once; running items finish. The batch then ends " +
          "`canceled`. Canceling a canceled batch changes nothing; a completed batch answers 409.",
        tags: ["batches"],
        params: BatchIdParams,
        response: { 200: BatchView, 401: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse },
      },
    },
    async (request) => {
      const id = requireBatchId(request.params.id);
      const { batch, dispatched } = await batches.requestCancel(request.principal.userId, id);
      // The workers' economy scheduler cancels the provider batches at its next pass.
      if (batch.tier === "economy") await economy.pollSoon(batch.id);
      // Best effort: canceled items still waiting in BullMQ would only be skipped by the workers.
      await Promise.all(
        dispatched.map(async (item) => {
          await queues.removeWaiting(item.type, item.id).catch(() => {});
          await app.genq.quota?.release(item.id).catch(() => {});
        }),
      );
      const active = batch.status === "running" ? await batches.countActive(batch.id) : 0;
      return toBatchView(batch, active, options.publicUrl);
    },
  );
}
