import { GenqError } from "@genq/core";

/** `get` of a key that holds no object. */
export class ObjectNotFoundError extends GenqError {
  override readonly name = "ObjectNotFoundError";
  constructor(
    readonly key: string,
    options: { cause?: unknown } = {},
  ) {
    super("not_found", `Object "${key}" was not found`, {
      details: { resource: "object", key },
      cause: options.cause,
    });
  }
}

/**
 * The bytes written did not match the `sha256` or `contentLength` the caller declared.
 * Nothing is left under the key on the local driver; on S3 a single-request write is
 * rejected before completion and a multipart write is aborted.
 */
export class ObjectIntegrityError extends GenqError {
  override readonly name = "ObjectIntegrityError";
  constructor(
    readonly key: string,
    readonly property: "sha256" | "bytes",
    readonly expected: string | number,
    readonly actual: string | number,
  ) {
    super(
      "invalid_request",
      `Object "${key}": the body's ${property} is ${actual}, but ${expected} was declared`,
      { details: { key, property, expected, actual } },
    );
  }
}
