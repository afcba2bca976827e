import type { HttpClient, RequestOptions } from "../http-client.ts";
import type { Upload } from "../types.ts";

/** Options of {@link UploadsResource.create}. */
export interface CreateUploadOptions extends RequestOptions {
  /** The file name sent in the multipart part. @defaultValue "image" */
  filename?: string | undefined;
}

/** `/v1/uploads`: images for image edits and variations. */
export class UploadsResource {
  readonly #http: HttpClient;

  constructor(http: HttpClient) {
    this.#http = http;
  }

  /**
   * Uploads an image (PNG, JPEG or WebP; the API reads the type from the bytes) as
   * `multipart/form-data`; reference the answer's `id` as `input.image` or `input.mask`.
   */
  create(
    file: Blob | Uint8Array<ArrayBuffer> | ArrayBuffer,
    options: CreateUploadOptions = {},
  ): Promise<Upload> {
    const form = new FormData();
    form.append("file", file instanceof Blob ? file : new Blob([file]), options.filename ?? "image");
    return this.#http.json({
      method: "POST",
      path: "/v1/uploads",
      body: form,
      signal: options.signal,
      timeoutMs: options.timeoutMs,
    });
  }

  /** An upload's metadata. */
  get(id: string, options: RequestOptions = {}): Promise<Upload> {
    return this.#http.json({ method: "GET", path: `/v1/uploads/${encodeURIComponent(id)}`, ...options });
  }
}
