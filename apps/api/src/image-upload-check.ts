import { GenqError, type ImageJobInput } from "@genq/core";
import type { UploadRepository } from "@genq/db";

/**
 * Refuses an edit or variation whose `image` or `mask` is not one of the caller's
 * uploads (missing, or another user's: the answer does not tell them apart), naming
 * the field. Checked at submit so the mistake is a 400 now, not a failed job later.
 */
export async function checkImageUploads(
  uploads: Pick<UploadRepository, "findOwned">,
  userId: string,
  input: ImageJobInput,
): Promise<void> {
  for (const field of ["image", "mask"] as const) {
    const uploadId = input[field];
    if (uploadId === undefined) continue;
    if ((await uploads.findOwned(userId, uploadId)) === null) {
      throw new GenqError(
        "invalid_request",
        `body.input.${field}: upload ${uploadId} was not found; upload the image first (POST /v1/uploads)`,
        { details: { location: "body", field: `input.${field}`, resource: "upload", id: uploadId } },
      );
    }
  }
}
