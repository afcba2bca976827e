const OBJECT_KEY_PATTERN = /^[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/;
const PREFIX_PATTERN = /^[A-Za-z0-9/._-]*$/;

/** The longest key S3 accepts, in bytes; keys are ASCII so bytes equal characters. */
export const MAX_OBJECT_KEY_LENGTH = 1024;

/**
 * Throws a `TypeError` unless `key` is a safe object key: 1 to 1024 characters from
 * `[A-Za-z0-9/._-]`, no leading or trailing `/`, no empty segment (`a//b`) and no `..`
 * anywhere. The same key then means the same thing on S3, on disk and in a URL path,
 * and cannot climb out of the local storage directory.
 */
export function assertObjectKey(key: unknown): asserts key is string {
  if (typeof key !== "string" || key.length === 0) {
    throw new TypeError("Object key must be a non-empty string");
  }
  if (key.length > MAX_OBJECT_KEY_LENGTH) {
    throw new TypeError(`Object key is longer than ${MAX_OBJECT_KEY_LENGTH} characters`);
  }
  if (key.includes("..")) {
    throw new TypeError(`Object key "${key}" must not contain ".."`);
  }
  if (!OBJECT_KEY_PATTERN.test(key)) {
    throw new TypeError(
      `Object key "${key}" must use only [A-Za-z0-9/._-], with no leading, trailing or repeated "/"`,
    );
  }
}

/**
 * Throws a `TypeError` unless `prefix` could begin a valid key: `""` or characters from
 * `[A-Za-z0-9/._-]`, no leading `/`, no `..`.
 */
export function assertKeyPrefix(prefix: unknown): asserts prefix is string {
  if (typeof prefix !== "string") {
    throw new TypeError("Key prefix must be a string");
  }
  if (prefix.length > MAX_OBJECT_KEY_LENGTH) {
    throw new TypeError(`Key prefix is longer than ${MAX_OBJECT_KEY_LENGTH} characters`);
  }
  if (
    prefix.startsWith("/") ||
    prefix.includes("..") ||
    prefix.includes("//") ||
    !PREFIX_PATTERN.test(prefix)
  ) {
    throw new TypeError(
      `Key prefix "${prefix}" must use only [A-Za-z0-9/._-], with no leading or repeated "/" and no ".."`,
    );
  }
}
