import fastifyMultipart from "@fastify/multipart";
import { GenqError, newId } from "@genq/core";
import { type UploadRecord, UploadRepository, uploadObjectKey } from "@genq/db";
import { detectImageMediaType, imageDimensions } from "@genq/providers";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { readPart } from "../multipart-part.ts";
import { ErrorResponse } from "./error-response.ts";

/** The largest upload accepted when no limit is configured: 20 MiB. */
export const DEFAULT_UPLOAD_LIMIT_BYTES = 20 * 1024 * 1024;

/** Options for {@link uploadRoutes}. */
export interface UploadRoutesOptions {
  /** The largest file accepted, in bytes; larger ones are refused with 413. */
  limitBytes: number;
}

/** The formats providers accept for edits and variations, as sniffed from the bytes. */
const ACCEPTED_MEDIA_TYPES: ReadonlySet<string> = new Set(["image/png", "image/jpeg", "image/webp"]);

/** The multipart field that carries the file. */
const FILE_FIELD = "file";

const Upload = z
  .object({
    id: z.string().describe("Reference it as `input.image` or `input.mask` of an image job"),
    contentType: z.string().describe("Read from the bytes: image/png, image/jpeg or image/webp"),
    bytes: z.number().int(),
    sha256: z.string(),
    width: z.number().int(),
    height: z.number().int(),
    createdAt: z.string(),
  })
  .meta({ id: "Upload" });

const UploadIdParams = z.object({ id: z.string().describe("The upload id") });

function toView(upload: UploadRecord): z.infer<typeof Upload> {
  return {
    id: upload.id,
    contentType: upload.contentType,
    bytes: upload.bytes,
    sha256: upload.sha256,
    width: upload.width,
    height: upload.height,
    createdAt: upload.createdAt.toISOString(),
  };
}

/**
 * `/v1/uploads`: images uploaded as the source or mask of image edits and variations.
 * The type is read from the bytes (PNG, JPEG or WebP; the client's Content-Type is not
 * trusted), the bytes go to object storage and a row records what was stored.
 * `@fastify/multipart` is registered in this plugin's scope only: no other route parses multipart.
 */
export async function uploadRoutes(app: FastifyInstance, options: UploadRoutesOptions): Promise<void> {
  await app.register(fastifyMultipart, {
    // One file and a few small fields; anything more is not an upload this route takes.
    limits: { fileSize: options.limitBytes, files: 1, fields: 10, fieldSize: 1_024, parts: 12 },
  });
  const routes = app.withTypeProvider<ZodTypeProvider>();
  const uploads = new UploadRepository({ db: app.genq.db });

  routes.post(
    "/uploads",
    {
      schema: {
        operationId: "createUpload",
        summary: "Upload an image",
        description:
          "Stores an image for an image job's `input.image` or `input.mask`. Send `multipart/form-data` " +
          `with the image in the field \`${FILE_FIELD}\`: PNG, JPEG or WebP, at most ${options.limitBytes} bytes.`,
        tags: ["uploads"],
        documentedBody: {
          content: {
            "multipart/form-data": {
              type: "object",
              required: [FILE_FIELD],
              properties: {
                [FILE_FIELD]: {
                  type: "string",
                  contentMediaType: "application/octet-stream",
                  description: "The image: PNG, JPEG or WebP",
                },
              },
            },
          },
        },
        response: {
          201: Upload,
          400: ErrorResponse,
          401: ErrorResponse,
          413: ErrorResponse,
          415: ErrorResponse,
          503: ErrorResponse,
        },
      },
    },
    async (request, reply) => {
      const { storage } = app.genq;
      if (storage === undefined) {
        throw new GenqError("service_unavailable", "uploads need object storage, and none is configured");
      }
      if (!request.isMultipart()) {
        throw new GenqError(
          "unsupported_media_type",
          `send the image as multipart/form-data in the field \`${FILE_FIELD}\``,
        );
      }
      const part = await readPart(() => request.file(), options.limitBytes, FILE_FIELD);
      if (part === undefined) {
        throw new GenqError(
          "invalid_request",
          `no file: send the image in the multipart field \`${FILE_FIELD}\``,
          {
            details: { field: FILE_FIELD },
          },
        );
      }
      if (part.fieldname !== FILE_FIELD) {
        part.file.resume();
        throw new GenqError(
          "invalid_request",
          `the file must be in the multipart field \`${FILE_FIELD}\`, not \`${part.fieldname}\``,
          { details: { field: FILE_FIELD } },
        );
      }
      const bytes = await readPart(() => part.toBuffer(), options.limitBytes, FILE_FIELD);
      const mediaType = detectImageMediaType(bytes);
      const dimensions = imageDimensions(bytes);
      if (mediaType === undefined || !ACCEPTED_MEDIA_TYPES.has(mediaType) || dimensions === undefined) {
        throw new GenqError(
          "unsupported_media_type",
          `the file is not a PNG, JPEG or WebP image${mediaType === undefined ? "" : ` (it is ${mediaType})`}`,
          { details: { accepted: [...ACCEPTED_MEDIA_TYPES] } },
        );
      }

      const userId = request.principal.userId;
      const id = newId();
      // The object first: a row never points at bytes that are not there.
      const stored = await storage.put(uploadObjectKey(userId, id), bytes, {
        contentType: mediaType,
        contentLength: bytes.byteLength,
      });
      const upload = await uploads.create({
        id,
        userId,
        contentType: mediaType,
        bytes: stored.bytes,
        sha256: stored.sha256,
        width: dimensions.width,
        height: dimensions.height,
      });
      request.log.info({ uploadId: id, bytes: stored.bytes, contentType: mediaType }, "upload stored");
      return reply.status(201).send(toView(upload));
    },
  );

  routes.get(
    "/uploads/:id",
    {
      schema: {
        operationId: "getUpload",
        summary: "Get an upload's metadata",
        tags: ["uploads"],
        params: UploadIdParams,
        response: { 200: Upload, 401: ErrorResponse, 404: ErrorResponse },
      },
    },
    async (request) => toView(await uploads.findForUser(request.principal.userId, request.params.id)),
  );
}
