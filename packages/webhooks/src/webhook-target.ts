import {
  checkPublicUrl,
  EMPTY_ALLOWLIST,
  type HostLookup,
  PublicTargetRefusedError,
  type ResolvedAddress,
  resolvePublicTarget,
} from "@genq/net-guard";
import type { WebhookAllowlist } from "./webhook-allowlist.ts";

export { bareHostname, type HostLookup, type ResolvedAddress, systemLookup } from "@genq/net-guard";

/** A webhook URL the SSRF guard refused (`@genq/net-guard`'s refusal, named for webhooks). */
export const WebhookTargetRefusedError = PublicTargetRefusedError;
export type WebhookTargetRefusedError = PublicTargetRefusedError;

const LABEL = "webhook";

/**
 * Checks a webhook URL without resolving it: http(s), and an IP-literal host
 * must be public or allowlisted. For submit-time checks; delivery uses
 * {@link resolveWebhookTarget}. Throws {@link WebhookTargetRefusedError}.
 */
export function checkWebhookUrl(url: string, allowlist: WebhookAllowlist = EMPTY_ALLOWLIST): void {
  checkPublicUrl(url, { allowlist, label: LABEL });
}

/**
 * Resolves a webhook URL's host and checks every address (any non-public one
 * refuses the URL); returns the address to connect to, so the connection goes
 * where the check looked.
 */
export function resolveWebhookTarget(
  url: string,
  options: { allowlist?: WebhookAllowlist | undefined; lookup?: HostLookup | undefined } = {},
): Promise<{ url: URL; address: ResolvedAddress }> {
  return resolvePublicTarget(url, { ...options, label: LABEL });
}

/**
 * The create-time check of an endpoint URL: {@link checkWebhookUrl}, then the
 * host's current addresses. A host that does not resolve (yet) is accepted: every
 * delivery checks again.
 */
export async function checkWebhookTarget(
  url: string,
  allowlist: WebhookAllowlist = EMPTY_ALLOWLIST,
  lookup?: HostLookup,
): Promise<void> {
  checkWebhookUrl(url, allowlist);
  try {
    await resolveWebhookTarget(url, { allowlist, lookup });
  } catch (error) {
    if (error instanceof PublicTargetRefusedError) throw error;
  }
}
