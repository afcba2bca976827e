import { type HostAllowlist, parseHostAllowlist } from "@genq/net-guard";

export { allowsAddress, allowsHostname, EMPTY_ALLOWLIST } from "@genq/net-guard";

/** Hosts webhook URLs may name although private or loopback (`GENQ_WEBHOOK_ALLOWED_HOSTS`). */
export type WebhookAllowlist = HostAllowlist;

/** Parses `GENQ_WEBHOOK_ALLOWED_HOSTS` (`localhost,127.0.0.1,10.0.0.0/8,::1`); throws on a bad entry. */
export const parseWebhookAllowlist: (value: string | readonly string[] | undefined) => WebhookAllowlist =
  parseHostAllowlist;
