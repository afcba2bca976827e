import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { GenqError } from "@genq/core";
import { pinnedLookup } from "@genq/net-guard";
import type { WebhookAllowlist } from "./webhook-allowlist.ts";
import { type HostLookup, resolveWebhookTarget } from "./webhook-target.ts";

/** How one delivery attempt ended, as the delivery log records it. */
export type DeliveryOutcome = "delivered" | "failed" | "timeout" | "refused" | "error";

/** The result of {@link postWebhook}. */
export interface PostResult {
  outcome: DeliveryOutcome;
  /** The HTTP status, when the receiver answered. */
  status: number | null;
  latencyMs: number;
  /** The first bytes of the answer (at most `excerptBytes`). */
  excerpt: string | null;
  errorMessage: string | null;
}

/** Options for {@link postWebhook}. */
export interface PostWebhookOptions {
  url: string;
  headers: Record<string, string>;
  body: string;
  /** The whole attempt (resolve, connect, answer) must end within this. Default 15 s. */
  timeoutMs?: number | undefined;
  allowlist?: WebhookAllowlist | undefined;
  lookup?: HostLookup | undefined;
  /** How much of the answer to keep. Default 1 KiB. */
  excerptBytes?: number | undefined;
}

/**
 * POSTs one webhook: resolves and checks the host (SSRF guard), connects to the
 * checked address (Host and TLS SNI stay the hostname), follows no redirect (a
 * 3xx is a failed attempt), gives up after `timeoutMs`, and keeps the first KiB
 * of the answer. Never throws: every ending is a {@link PostResult}.
 */
export async function postWebhook(options: PostWebhookOptions): Promise<PostResult> {
  const started = performance.now();
  const timeoutMs = options.timeoutMs ?? 15_000;
  const excerptBytes = options.excerptBytes ?? 1_024;
  const elapsed = () => Math.round(performance.now() - started);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    let target: Awaited<ReturnType<typeof resolveWebhookTarget>>;
    try {
      target = await Promise.race([
        resolveWebhookTarget(options.url, { allowlist: options.allowlist, lookup: options.lookup }),
        new Promise<never>((_, reject) =>
          controller.signal.addEventListener("abort", () =>
            reject(new Error("timed out resolving the host")),
          ),
        ),
      ]);
    } catch (error) {
      const refused = GenqError.is(error);
      return {
        outcome: controller.signal.aborted ? "timeout" : refused ? "refused" : "error",
        status: null,
        latencyMs: elapsed(),
        excerpt: null,
        errorMessage: error instanceof Error ? error.message : String(error),
      };
    }
    const { url, address } = target;
    const send = url.protocol === "https:" ? httpsRequest : httpRequest;
    return await new Promise<PostResult>((resolve) => {
      let settled = false;
      const finish = (result: Omit<PostResult, "latencyMs">) => {
        if (settled) return;
        settled = true;
        resolve({ ...result, latencyMs: elapsed() });
      };
      const request = send(
        url,
        {
          method: "POST",
          headers: {
            ...options.headers,
            "content-type": "application/json",
            "content-length": String(Buffer.byteLength(options.body)),
            "user-agent": "genq-webhooks/1",
          },
          lookup: pinnedLookup(address),
          agent: false,
          signal: controller.signal,
        },
        (response: IncomingMessage) => {
          const status = response.statusCode ?? 0;
          const chunks: Buffer[] = [];
          let size = 0;
          const done = () => {
            const excerpt = Buffer.concat(chunks).subarray(0, excerptBytes).toString("utf8");
            finish({
              outcome: status >= 200 && status < 300 ? "delivered" : "failed",
              status,
              excerpt: excerpt === "" ? null : excerpt,
              errorMessage:
                status >= 300 && status < 400
                  ? `redirect to ${response.headers.location ?? "?"} not followed`
                  : null,
            });
            response.destroy();
          };
          response.on("data", (chunk: Buffer) => {
            chunks.push(chunk);
            size += chunk.length;
            if (size >= excerptBytes) done();
          });
          response.on("end", done);
          response.on("error", done);
        },
      );
      request.on("error", (error) => {
        finish({
          outcome: controller.signal.aborted ? "timeout" : "error",
          status: null,
          excerpt: null,
          errorMessage: controller.signal.aborted ? `no answer within ${timeoutMs} ms` : error.message,
        });
      });
      request.end(options.body);
    });
  } finally {
    clearTimeout(timer);
  }
}
