import fastifyMultipart from "@fastify/multipart";
import type { BatchTier } from "@genq/core";
import { GenqError, NotFoundError } from "@genq/core";
import { BatchRepository, OpenAIBatchRepository, OpenAIFileRepository } from "@genq/db";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { readPart } from "../multipart-part.ts";
import { OpenAIBatchService } from "../openai/openai-batch-service.ts";
import { OpenAIErrorBody, useOpenAIErrors } from "../openai/openai-errors.ts";
import { OpenAIFileService, type SpooledFile } from "../openai/openai-file-service.ts";
import { parseBatchId, parseFileId, toFileId } from "../openai/openai-ids.ts";
import { DEFAULT_INPUT_LINE_LIMIT_BYTES, MAX_INPUT_FILE_BYTES } from "../openai/openai-input-file.ts";
import { CHAT_COMPLETIONS_URL } from "../openai/openai-request-line.ts";
import {
  OpenAIBatchObject,
  OpenAIFileDeleted,
  OpenAIFileObject,
  openAIList,
  toBatchObject,
  toFileView,
  toOpenAIList,
} from "../openai/openai-views.ts";
import { SUBMISSION_ROUTE } from "../plugins/submission-rate-limit.ts";

/** Options for {@link openAIRoutes}. */
export interface OpenAIRoutesOptions {
  /** The largest input file, in bytes. @defaultValue {@link MAX_INPUT_FILE_BYTES} (200 MB, OpenAI's limit) */
  fileLimitBytes?: number | undefined;
  /** The longest line of an input file, in bytes. @defaultValue {@link DEFAULT_INPUT_LINE_LIMIT_BYTES} */
  lineLimitBytes?: number | undefined;
  /** The tier a completion window runs on. @defaultValue always `online` */
  tierFor?: ((completionWindow: string) => BatchTier) | undefined;
}

/** OpenAI's metadata: at most 16 pairs, keys up to 64 characters, values up to 512. */
const MAX_METADATA_PAIRS = 16;
/** The multipart field that carries the file, as in OpenAI's API. */
const FILE_FIELD = "file";

const OpenAIErrors = {
  400: OpenAIErrorBody,
  401: OpenAIErrorBody,
  404: OpenAIErrorBody,
  409: OpenAIErrorBody,
  413: OpenAIErrorBody,
  415: OpenAIErrorBody,
  429: OpenAIErrorBody,
  503: OpenAIErrorBody,
};

const FileIdParams = z.object({ file_id: z.string().max(100) });
const BatchIdParams = z.object({ batch_id: z.string().max(100) });

const FileListQuery = z.object({
  after: z.string().max(100).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(10_000),
  order: z.enum(["asc", "desc"]).default("desc"),
  purpose: z.string().max(64).optional(),
});

const BatchListQuery = z.object({
  after: z.string().max(100).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
});

const CreateBatchBody = z
  .object({
    input_file_id: z.string().min(1).max(100),
    endpoint: z.string().max(100),
    completion_window: z.string().max(20),
    metadata: z
      .record(z.string().min(1).max(64), z.string().max(512))
      .refine((metadata) => Object.keys(metadata).length <= MAX_METADATA_PAIRS, {
        message: `metadata holds at most ${MAX_METADATA_PAIRS} pairs`,
      })
      .nullable()
      .optional(),
  })
  .strict()
  .meta({
    examples: [
      {
        input_file_id: "file-0193a7d2c4e07a3b9f1e2d3c4b5a6978",
        endpoint: "/v1/chat/completions",
        completion_window: "24h",
        metadata: { job: "nightly-eval" },
      },
    ],
  });

function requireFileId(id: string): string {
  const uuid = parseFileId(id);
  if (uuid === undefined) throw new NotFoundError("file", id);
  return uuid;
}

function requireBatchId(id: string): string {
  const uuid = parseBatchId(id);
  if (uuid === undefined) throw new NotFoundError("batch", id);
  return uuid;
}

/** Runs a lookup by UUID, reporting a miss under the id the client sent. */
async function orNotFound<T>(resource: string, publicId: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (GenqError.is(error) && error.code === "not_found") throw new NotFoundError(resource, publicId);
    throw error;
  }
}

function badParam(param: string, message: string): GenqError {
  return new GenqError("invalid_request", message, { details: { field: param } });
}

/**
 * OpenAI's Files and Batches API, under the prefix it is registered with
 * (`/openai/v1`): the official `openai` SDK drives genq with `baseURL` set there
 * and the genq API key as its key. Shapes, statuses and errors follow OpenAI's API
 * reference, so these routes are left out of genq's own OpenAPI document.
 */
export async function openAIRoutes(app: FastifyInstance, options: OpenAIRoutesOptions): Promise<void> {
  useOpenAIErrors(app);
  const fileLimitBytes = options.fileLimitBytes ?? MAX_INPUT_FILE_BYTES;
  await app.register(fastifyMultipart, {
    limits: { fileSize: fileLimitBytes, files: 1, fields: 10, fieldSize: 1_024, parts: 12 },
  });
  const routes = app.withTypeProvider<ZodTypeProvider>();
  const { db, queues, storage, quota, lifecycle } = app.genq;
  const files = new OpenAIFileRepository({ db });
  const openaiBatches = new OpenAIBatchRepository({ db });
  const maxLineBytes = options.lineLimitBytes ?? DEFAULT_INPUT_LINE_LIMIT_BYTES;
  const fileService = new OpenAIFileService({
    files,
    batches: openaiBatches,
    storage,
    maxLineBytes,
    maxBytes: fileLimitBytes,
  });
  const batchService = new OpenAIBatchService({
    batches: new BatchRepository({ db, hooks: lifecycle.effects }),
    openaiBatches,
    files,
    fileService,
    queues,
    quota,
    maxLineBytes,
    tierFor: options.tierFor,
  });

  routes.post(
    "/files",
    {
      schema: {
        hide: true,
        operationId: "createOpenAIFile",
        summary: "Upload a batch input file (OpenAI Files API)",
        tags: ["openai"],
        consumes: ["multipart/form-data"],
        response: { 200: OpenAIFileObject, ...OpenAIErrors },
      },
    },
    async (request) => {
      fileService.requireStorage();
      if (!request.isMultipart()) {
        throw new GenqError(
          "unsupported_media_type",
          "send the file as multipart/form-data in the field `file`",
        );
      }
      let spooled: SpooledFile | undefined;
      const fields = new Map<string, string>();
      try {
        // A malformed or unterminated body is the client's: 400, never a 500 from the parser.
        await readPart(
          async () => {
            for await (const part of request.parts()) {
              if (part.type === "field") {
                fields.set(part.fieldname, String(part.value));
              } else if (part.fieldname !== FILE_FIELD || spooled !== undefined) {
                part.file.resume();
                throw badParam(FILE_FIELD, "send one file, in the multipart field `file`");
              } else {
                spooled = await fileService.spool({ stream: part.file, filename: part.filename });
              }
            }
          },
          fileLimitBytes,
          FILE_FIELD,
        );
        const purpose = fields.get("purpose");
        if (purpose !== "batch") {
          throw badParam(
            "purpose",
            purpose === undefined
              ? "purpose is required: genq takes files of purpose `batch`"
              : `purpose \`${purpose}\` is not supported: genq takes files of purpose \`batch\``,
          );
        }
        if (spooled === undefined)
          throw badParam(FILE_FIELD, "no file: send it in the multipart field `file`");
        const file = await fileService.store(request.principal.userId, spooled);
        request.log.info(
          { fileId: file.id, bytes: Number(file.bytes), lines: file.lineCount },
          "openai file stored",
        );
        return toFileView(file);
      } finally {
        await spooled?.close();
      }
    },
  );

  routes.get(
    "/files",
    {
      schema: {
        hide: true,
        operationId: "listOpenAIFiles",
        summary: "List files (OpenAI Files API)",
        tags: ["openai"],
        querystring: FileListQuery,
        response: { 200: openAIList(OpenAIFileObject), ...OpenAIErrors },
      },
    },
    async (request) => {
      const { after, limit, order, purpose } = request.query;
      const page = await files.list(request.principal.userId, {
        after: after === undefined ? undefined : parseFileId(after),
        limit,
        order,
        purpose,
      });
      return toOpenAIList(page.data.map(toFileView), page.hasMore);
    },
  );

  routes.get(
    "/files/:file_id",
    {
      schema: {
        hide: true,
        operationId: "getOpenAIFile",
        summary: "Get a file (OpenAI Files API)",
        tags: ["openai"],
        params: FileIdParams,
        response: { 200: OpenAIFileObject, ...OpenAIErrors },
      },
    },
    async (request) => {
      const { file_id: fileId } = request.params;
      return toFileView(
        await orNotFound("file", fileId, () =>
          files.findForUser(request.principal.userId, requireFileId(fileId)),
        ),
      );
    },
  );

  routes.get(
    "/files/:file_id/content",
    {
      schema: {
        hide: true,
        operationId: "getOpenAIFileContent",
        summary: "Download a file's content (OpenAI Files API)",
        tags: ["openai"],
        params: FileIdParams,
        response: OpenAIErrors,
      },
    },
    async (request, reply) => {
      const { file_id: fileId } = request.params;
      const file = await orNotFound("file", fileId, () =>
        files.findForUser(request.principal.userId, requireFileId(fileId)),
      );
      const content = await fileService.content(file);
      // A stream is sent as it is (no serializer); the typed reply only knows the JSON shapes.
      return reply.type("application/octet-stream").send(content as never);
    },
  );

  routes.delete(
    "/files/:file_id",
    {
      schema: {
        hide: true,
        operationId: "deleteOpenAIFile",
        summary: "Delete a file (OpenAI Files API)",
        tags: ["openai"],
        params: FileIdParams,
        response: { 200: OpenAIFileDeleted, ...OpenAIErrors },
      },
    },
    async (request) => {
      const { file_id: fileId } = request.params;
      const file = await orNotFound("file", fileId, () =>
        fileService.delete(request.principal.userId, requireFileId(fileId)),
      );
      return { id: toFileId(file.id), object: "file" as const, deleted: true as const };
    },
  );

  routes.post(
    "/batches",
    {
      config: SUBMISSION_ROUTE,
      schema: {
        hide: true,
        operationId: "createOpenAIBatch",
        summary: "Create a batch of an input file (OpenAI Batch API)",
        tags: ["openai"],
        body: CreateBatchBody,
        response: { 200: OpenAIBatchObject, ...OpenAIErrors },
      },
    },
    async (request) => {
      const body = request.body;
      if (body.endpoint !== CHAT_COMPLETIONS_URL) {
        throw badParam(
          "endpoint",
          `endpoint \`${body.endpoint}\` is not supported: genq runs \`${CHAT_COMPLETIONS_URL}\` batches only${body.endpoint === "/v1/embeddings" ? " (genq has no embeddings)" : ""}`,
        );
      }
      if (body.completion_window !== "24h") {
        throw badParam("completion_window", "completion_window must be `24h`");
      }
      const inputFileId = parseFileId(body.input_file_id);
      if (inputFileId === undefined) throw new NotFoundError("file", body.input_file_id);
      const { record, state } = await orNotFound("file", body.input_file_id, () =>
        batchService.create({
          userId: request.principal.userId,
          plan: request.principal.plan,
          inputFileId,
          endpoint: body.endpoint,
          completionWindow: body.completion_window,
          metadata: body.metadata,
        }),
      );
      request.log.info(
        { openaiBatchId: record.id, batchId: record.batchId, status: record.status },
        "openai batch created",
      );
      return toBatchObject(record, state);
    },
  );

  routes.get(
    "/batches",
    {
      schema: {
        hide: true,
        operationId: "listOpenAIBatches",
        summary: "List batches, newest first (OpenAI Batch API)",
        tags: ["openai"],
        querystring: BatchListQuery,
        response: { 200: openAIList(OpenAIBatchObject), ...OpenAIErrors },
      },
    },
    async (request) => {
      const { after, limit } = request.query;
      const page = await openaiBatches.list(request.principal.userId, {
        after: after === undefined ? undefined : parseBatchId(after),
        limit,
      });
      const snapshots = await Promise.all(page.data.map((record) => batchService.refresh(record)));
      return toOpenAIList(
        snapshots.map(({ record, state }) => toBatchObject(record, state)),
        page.hasMore,
      );
    },
  );

  routes.get(
    "/batches/:batch_id",
    {
      schema: {
        hide: true,
        operationId: "getOpenAIBatch",
        summary: "Get a batch (OpenAI Batch API)",
        tags: ["openai"],
        params: BatchIdParams,
        response: { 200: OpenAIBatchObject, ...OpenAIErrors },
      },
    },
    async (request) => {
      const { batch_id: batchId } = request.params;
      const { record, state } = await orNotFound("batch", batchId, () =>
        batchService.get(request.principal.userId, requireBatchId(batchId)),
      );
      return toBatchObject(record, state);
    },
  );

  routes.post(
    "/batches/:batch_id/cancel",
    {
      schema: {
        hide: true,
        operationId: "cancelOpenAIBatch",
        summary: "Cancel a batch (OpenAI Batch API)",
        tags: ["openai"],
        params: BatchIdParams,
        response: { 200: OpenAIBatchObject, ...OpenAIErrors },
      },
    },
    async (request) => {
      const { batch_id: batchId } = request.params;
      const { record, state } = await orNotFound("batch", batchId, () =>
        batchService.cancel(request.principal.userId, requireBatchId(batchId)),
      );
      return toBatchObject(record, state);
    },
  );
}
