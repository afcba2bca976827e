import { GenqError } from "@genq/core";
import { contentDisposition, type LocalStorage, ObjectNotFoundError } from "@genq/storage";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { errorResponses } from "./error-response.ts";

/** Media types served as they are; anything else (SVG, HTML, …) is served as a download of bytes. */
const INLINE_MEDIA_TYPES = new Set(["image/png", "image/jpeg", "image/webp", "image/gif"]);

/**
 * Headers every asset answer carries: the browser must not sniff another type,
 * and whatever it renders runs in a sandbox with nothing allowed (no script, no
 * same-origin access to the API, no requests).
 */
const ASSET_SECURITY_HEADERS = {
  "x-content-type-options": "nosniff",
  "content-security-policy": "default-src 'none'; sandbox",
  "cross-origin-resource-policy": "same-site",
} as const;

const AssetQuery = z.object({
  expires: z.string().max(20).optional(),
  signature: z.string().max(200).optional(),
  filename: z.string().max(200).optional(),
});

/**
 * `GET /v1/assets/<key>?expires&signature`: objects of the local storage driver,
 * behind HMAC-signed, expiring links (the link is the credential; no API key).
 * Tampered, foreign or expired links answer 403. Answers carry `nosniff` and a
 * sandbox CSP; only PNG, JPEG, WebP and GIF are served inline, anything else
 * stored under a key (a type a provider declared) as an `application/octet-stream` attachment.
 */
export async function assetRoutes(app: FastifyInstance, options: { storage: LocalStorage }): Promise<void> {
  const routes = app.withTypeProvider<ZodTypeProvider>();
  routes.get(
    "/*",
    {
      schema: {
        operationId: "getAsset",
        tags: ["assets"],
        summary: "Download a stored image through a signed link",
        security: [],
        querystring: AssetQuery,
        response: { ...errorResponses(403, 404) },
        documentedResponses: {
          200: {
            description:
              "The object's bytes: PNG, JPEG, WebP and GIF inline, anything else as an `application/octet-stream` attachment",
            content: Object.fromEntries(
              [...INLINE_MEDIA_TYPES, "application/octet-stream"].map((mediaType) => [
                mediaType,
                { type: "string", contentMediaType: mediaType },
              ]),
            ),
          },
        },
      },
    },
    async (request, reply) => {
      reply.headers(ASSET_SECURITY_HEADERS);
      const key = (request.params as { "*": string })["*"];
      const { expires, signature, filename } = request.query;
      let verdict: "ok" | "expired" | "invalid";
      try {
        verdict = options.storage.verifySignedUrl(
          key,
          expires,
          signature,
          filename === undefined ? {} : { filename },
        );
      } catch {
        verdict = "invalid"; // not even a valid object key
      }
      if (verdict !== "ok") {
        throw new GenqError(
          "forbidden",
          verdict === "expired"
            ? "this link has expired; read the job again for a fresh one"
            : "this link is not valid (wrong signature or object)",
        );
      }
      try {
        const object = await options.storage.get(key);
        const inline = INLINE_MEDIA_TYPES.has(object.contentType.toLowerCase());
        reply.header("content-type", inline ? object.contentType : "application/octet-stream");
        reply.header("content-length", String(object.bytes));
        reply.header("cache-control", "private, max-age=300");
        if (object.sha256 !== undefined) reply.header("etag", `"${object.sha256}"`);
        if (filename !== undefined) reply.header("content-disposition", contentDisposition(filename));
        else if (!inline) reply.header("content-disposition", "attachment");
        // A stream is sent as it is (no serializer); the typed reply only knows the error shape.
        return reply.send(object.body as never);
      } catch (error) {
        if (error instanceof ObjectNotFoundError)
          throw new GenqError("not_found", "the image no longer exists");
        throw error;
      }
    },
  );
}
