import type { HttpClient, RequestOptions } from "../http-client.ts";
import type { WebhookEvent, WebhookSecret } from "../types.ts";
import { type VerifyWebhookOptions, verifyWebhook, type WebhookHeaders } from "../webhook-verify.ts";

/** Webhook helpers: verify a delivery, read the secret of per-request webhook URLs. */
export class WebhooksResource {
  readonly #http: HttpClient;

  constructor(http: HttpClient) {
    this.#http = http;
  }

  /** Verifies a delivery and returns its typed event; see {@link verifyWebhook}. */
  verify(
    body: string | Uint8Array,
    headers: WebhookHeaders,
    secret: string,
    options: VerifyWebhookOptions = {},
  ): Promise<WebhookEvent> {
    return verifyWebhook(body, headers, secret, options);
  }

  /** The `whsec_` secret that signs deliveries to per-request `webhook.url`s (created on first use). */
  secret(options: RequestOptions = {}): Promise<WebhookSecret> {
    return this.#http.json({ method: "GET", path: "/v1/webhook-secret", ...options });
  }
}
