import { GenqError } from "@genq/core";

/** System error codes of the server's own disk, never of what a client sent. */
const SERVER_FAULTS = new Set([
  "ENOSPC",
  "EDQUOT",
  "EACCES",
  "EPERM",
  "EROFS",
  "EIO",
  "EMFILE",
  "ENFILE",
  "ENOENT",
  "EBADF",
]);

/**
 * Runs a multipart read (`request.file()`, `part.toBuffer()`, a loop over
 * `request.parts()`), turning @fastify/multipart's and busboy's errors into genq's
 * codes: a part over `limitBytes` is 413, too many files or parts 400 naming the
 * file's `field`, and anything else the parser raises (a malformed or unterminated
 * body, a cut connection) 400. Errors the route itself throws pass through, and so
 * do the file system's (the read may spool to disk): those are not the client's.
 */
export async function readPart<T>(read: () => Promise<T>, limitBytes: number, field: string): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (GenqError.is(error)) throw error;
    const code = (error as { code?: unknown }).code;
    // The server's own faults (spooling to a full or unwritable disk) stay server errors.
    if (typeof code === "string" && SERVER_FAULTS.has(code)) throw error;
    if (code === "FST_REQ_FILE_TOO_LARGE") {
      throw new GenqError(
        "payload_too_large",
        `the file is larger than the upload limit of ${limitBytes} bytes`,
        {
          details: { limitBytes },
        },
      );
    }
    if (code === "FST_FILES_LIMIT" || code === "FST_PARTS_LIMIT" || code === "FST_FIELDS_LIMIT") {
      throw new GenqError("invalid_request", `send one file, in the multipart field \`${field}\``, {
        details: { field },
      });
    }
    // Everything else here comes from parsing what the client sent (a malformed body, a cut connection).
    throw new GenqError("invalid_request", "the multipart body could not be read", { cause: error });
  }
}
