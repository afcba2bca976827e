import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { GenqError } from "@genq/core";
import { EMPTY_ALLOWLIST, type HostAllowlist } from "./host-allowlist.ts";
import { type HostLookup, pinnedLookup, resolvePublicTarget, type TargetLabel } from "./public-target.ts";

/** Why a guarded download failed (besides a refused address, {@link PublicTargetRefusedError}). */
export type DownloadFailure = "redirect" | "status" | "too_large" | "timeout" | "network";

/** A guarded download that did not produce a body within the limits. */
export class DownloadFailedError extends GenqError {
  override readonly name = "DownloadFailedError";
  constructor(
    readonly reason: DownloadFailure,
    message: string,
    options: { status?: number | undefined; cause?: unknown } = {},
  ) {
    super(reason === "timeout" ? "timeout" : "provider_unavailable", message, {
      // A slow or failing server may answer next time; a redirect or an oversized body will not.
      retryable:
        reason === "timeout" || reason === "network" || (reason === "status" && (options.status ?? 0) >= 500),
      cause: options.cause,
      details: { reason, ...(options.status === undefined ? {} : { status: options.status }) },
    });
  }
}

/** Options for {@link downloadPublicUrl}. */
export interface DownloadPublicUrlOptions {
  /** Hosts that may be private anyway (development, tests). Default none. */
  allowlist?: HostAllowlist | undefined;
  /** The largest body accepted, in bytes; a larger one is cut off. */
  maxBytes: number;
  /** The whole download (resolve, connect, body) must end within this, in milliseconds. */
  timeoutMs: number;
  /** The caller giving up (the job canceled). */
  signal?: AbortSignal | undefined;
  lookup?: HostLookup | undefined;
  /** Names the URL in messages (`"image"`: "image URL …"). Default `"download"`. */
  label?: TargetLabel | undefined;
}

/** A downloaded body and its declared media type. */
export interface DownloadedBody {
  bytes: Uint8Array;
  contentType: string | undefined;
}

/**
 * GETs a URL someone else chose (a provider's image link) without letting it
 * reach inside the network: the host is resolved and every address must be
 * public (or allowlisted), the connection goes to the checked address, no
 * redirect is followed, the body is cut off past `maxBytes`, and the whole
 * download ends within `timeoutMs`. Throws {@link PublicTargetRefusedError},
 * {@link DownloadFailedError}, or the caller's abort reason.
 */
export async function downloadPublicUrl(
  url: string,
  options: DownloadPublicUrlOptions,
): Promise<DownloadedBody> {
  const label = `${options.label ?? "download"} URL`;
  const controller = new AbortController();
  const timer = setTimeout(
    () =>
      controller.abort(
        new DownloadFailedError("timeout", `${label} took longer than ${options.timeoutMs} ms`),
      ),
    options.timeoutMs,
  );
  // Settles the race below with the reason of whichever ends first: the timeout or the caller.
  const aborted = new Promise<never>((_, reject) => {
    controller.signal.addEventListener("abort", () => reject(controller.signal.reason), { once: true });
  });
  aborted.catch(() => {});
  const onCallerAbort = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener("abort", onCallerAbort, { once: true });
  if (options.signal?.aborted) onCallerAbort();
  try {
    const { url: target, address } = await Promise.race([
      resolvePublicTarget(url, {
        allowlist: options.allowlist ?? EMPTY_ALLOWLIST,
        lookup: options.lookup,
        label: options.label ?? "download",
      }),
      aborted,
    ]);
    return await Promise.race([
      get(target, pinnedLookup(address), controller.signal, options.maxBytes, label),
      aborted,
    ]);
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onCallerAbort);
  }
}

function get(
  url: URL,
  lookup: ReturnType<typeof pinnedLookup>,
  signal: AbortSignal,
  maxBytes: number,
  label: string,
): Promise<DownloadedBody> {
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise<DownloadedBody>((resolve, reject) => {
    const request = send(
      url,
      { method: "GET", lookup, agent: false, signal },
      (response: IncomingMessage) => {
        const status = response.statusCode ?? 0;
        const fail = (error: DownloadFailedError) => {
          response.destroy();
          reject(error);
        };
        if (status >= 300 && status < 400) {
          // Each hop would need the same checks; a provider's image link has no reason to redirect.
          fail(
            new DownloadFailedError(
              "redirect",
              `${label} answered HTTP ${status} (redirect to ${response.headers.location ?? "?"}), which is not followed`,
              { status },
            ),
          );
          return;
        }
        if (status < 200 || status >= 300) {
          fail(new DownloadFailedError("status", `${label} failed with HTTP ${status}`, { status }));
          return;
        }
        const tooLarge = () =>
          new DownloadFailedError("too_large", `${label} is larger than the limit of ${maxBytes} bytes`);
        const declared = Number(response.headers["content-length"]);
        if (Number.isFinite(declared) && declared > maxBytes) {
          fail(tooLarge());
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        response.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBytes) {
            fail(tooLarge());
            return;
          }
          chunks.push(chunk);
        });
        response.on("end", () => {
          const contentType = response.headers["content-type"]?.split(";")[0]?.trim();
          resolve({ bytes: new Uint8Array(Buffer.concat(chunks)), contentType });
        });
        response.on("error", (error) =>
          reject(new DownloadFailedError("network", `${label} failed: ${error.message}`, { cause: error })),
        );
      },
    );
    request.on("error", (error) => {
      if (signal.aborted) return; // the race in downloadPublicUrl reports the reason
      reject(new DownloadFailedError("network", `${label} failed: ${error.message}`, { cause: error }));
    });
    request.end();
  });
}
