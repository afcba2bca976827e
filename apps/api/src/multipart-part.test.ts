import { GenqError } from "@genq/core";
import { describe, expect, it } from "vitest";
import { readPart } from "./multipart-part.ts";

/** What `readPart` turns `error` into (or passes on). */
async function refusal(error: unknown): Promise<unknown> {
  return readPart(() => Promise.reject(error), 1_000, "file").then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
}

function systemError(code: string, syscall: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${syscall}`), { code, syscall, errno: -28 });
}

describe("readPart", () => {
  it("answers a malformed or cut-off body as the client's error (400)", async () => {
    const thrown = await refusal(new Error("Unexpected end of form"));
    expect(GenqError.is(thrown) && thrown.code).toBe("invalid_request");
    const reset = await refusal(systemError("ECONNRESET", "read"));
    expect(GenqError.is(reset) && reset.code).toBe("invalid_request");
  });

  it("answers a file over the limit with 413 naming the limit", async () => {
    const thrown = await refusal(Object.assign(new Error("too large"), { code: "FST_REQ_FILE_TOO_LARGE" }));
    expect(GenqError.is(thrown) && thrown.code).toBe("payload_too_large");
    expect((thrown as Error).message).toContain("1000 bytes");
  });

  it("passes the server's own disk faults on unchanged (not a client error)", async () => {
    for (const code of ["ENOSPC", "EACCES", "EROFS"]) {
      const fault = systemError(code, "write");
      expect(await refusal(fault)).toBe(fault);
    }
  });

  it("passes the route's own errors on unchanged", async () => {
    const own = new GenqError("invalid_request", "purpose is required");
    expect(await refusal(own)).toBe(own);
  });
});
