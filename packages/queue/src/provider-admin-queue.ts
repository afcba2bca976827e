import { Queue } from "bullmq";
import type { Redis } from "ioredis";

/** The BullMQ queue of operators' provider checks, run by workers (the API never calls a provider). */
export const PROVIDER_ADMIN_QUEUE = "provider-admin";

/** An operator's provider check: validate one stored key, or list a provider's models. */
export type ProviderAdminTask =
  | { kind: "validate-key"; keyId: string; requestedBy: string }
  | { kind: "sync-models"; provider: string; requestedBy: string };

/**
 * The pub/sub channel announcing a new provider configuration version (decision
 * 0023); the message is the version number. Workers also poll the version, so a
 * missed message delays a change by at most one poll.
 */
export function providerConfigChannel(prefix: string): string {
  return `${prefix}:provider-config`;
}

/** The producer side of the provider-admin queue; results land in PostgreSQL, not here. */
export function createProviderAdminQueue(options: {
  connection: Redis;
  prefix: string;
}): Queue<ProviderAdminTask> {
  return new Queue<ProviderAdminTask>(PROVIDER_ADMIN_QUEUE, {
    connection: options.connection,
    prefix: options.prefix,
    defaultJobOptions: { attempts: 1, removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } },
  });
}
