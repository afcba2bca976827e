import type { JobRecord } from "@genq/db";
import { type RouteCallOptions, resolveTargets, type UserKeyClient } from "@genq/providers";
import type { JobProcessorOptions } from "./job-processor-options.ts";

/** The provider/model a job asked for (either may be left to the router). */
export type Selection = { provider?: string; model?: string };

/** The user-key clients of one attempt; see {@link userKeyClients}. */
export interface UserKeyClients {
  clientFor: RouteCallOptions["clientFor"];
  /** Every candidate runs on the user's key: the job cannot touch a system key. */
  coversAll: boolean;
}

const NONE: UserKeyClients = { clientFor: undefined, coversAll: false };

/**
 * Clients on the user's own keys for the providers the job may be routed to, on
 * providers that accept user keys only (elsewhere a stored key is ignored and the
 * job runs, and is charged, on the system's keys). When `coversAll`, the job
 * reserves nothing against the system quota.
 */
export async function userKeyClients(
  options: Pick<JobProcessorOptions, "userKeys" | "router">,
  record: JobRecord,
  selection: Selection,
  capability: "text" | "image",
): Promise<UserKeyClients> {
  if (options.userKeys === undefined) return NONE;
  const config = options.router.config();
  let providers: string[];
  try {
    const plan = resolveTargets(config, { ...selection, capability });
    providers = [...new Set(plan.tiers.flat().map((target) => target.provider))];
  } catch {
    return NONE; // not routable: the router call itself fails with the reason
  }
  const clients = new Map<string, UserKeyClient>();
  for (const provider of providers) {
    const deployment = config.providers.get(provider);
    if (deployment?.acceptsUserKeys !== true || deployment.clientForKey === undefined) continue;
    const apiKey = await options.userKeys.openForJob(record.userId, provider);
    if (apiKey === undefined) continue;
    clients.set(provider, { client: deployment.clientForKey(apiKey), ownerId: record.userId });
  }
  if (clients.size === 0) return NONE;
  return { clientFor: (provider) => clients.get(provider), coversAll: clients.size === providers.length };
}

/** The job's provider/model choice, as the router takes it. */
export function selectionOf(record: JobRecord): Selection {
  const selection: Selection = {};
  if (record.provider !== null) selection.provider = record.provider;
  if (record.model !== null) selection.model = record.model;
  return selection;
}
