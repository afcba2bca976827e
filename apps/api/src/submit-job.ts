import { type CreateJobRequest, PRIORITIES } from "@genq/core";
import type { AdmissionHold, JobAdmission, JobRecord } from "@genq/db";
import type { JobPlan, RouterCatalog } from "@genq/providers";
import { QuotaExceededError, type QuotaLedger } from "@genq/quota";
import type { CatalogSnapshot } from "./router-catalog-cache.ts";
import { planRequest } from "./worst-case-quota.ts";

/** What {@link admitJob} needs. */
export interface AdmitJobDependencies {
  admission: JobAdmission;
  /** Absent: no quota, nothing is held. */
  quota: QuotaLedger | undefined;
}

/** A submission, checked by the route (priority, webhook, provider options, images). */
export interface JobSubmission {
  userId: string;
  body: CreateJobRequest;
  idempotencyKey: string | undefined;
  requestHash: string | undefined;
  /** The published router catalog; undefined before any worker published one. */
  catalog: CatalogSnapshot | undefined;
}

/**
 * Plans a job and admits it in one round trip (idempotency lookup, quota hold, insert):
 * `created` means the row and a hold covering the plan are committed, so the job fits.
 * A replay under the same idempotency key answers `created: false` before any quota
 * check.
 *
 * Without a published catalog (no worker ran yet) the job is held by its plan without
 * routing: input plus `maxTokens` or the default output cap, or `n` images, and no
 * cost (the cost budget is then not checked for it).
 *
 * @throws {QuotaExceededError} when the plan does not fit the user's quota this month.
 */
export async function admitJob(
  dependencies: AdmitJobDependencies,
  submission: JobSubmission,
): Promise<{ job: JobRecord; created: boolean; plan: JobPlan }> {
  const { body } = submission;
  const plan = planRequest(body, submission.catalog?.routing);
  const hold = admissionHold(dependencies.quota, plan, submission.catalog);
  const admitted = await dependencies.admission.admit({
    userId: submission.userId,
    type: body.type,
    priority: PRIORITIES[body.priority],
    provider: body.provider,
    model: body.model,
    input: body.input,
    metadata: body.metadata,
    webhookUrl: body.webhook?.url,
    idempotencyKey: submission.idempotencyKey,
    requestHash: submission.requestHash,
    reservedOutputTokens: body.type === "text" ? plan.outputTokens : null,
    hold,
  });
  if (admitted.outcome === "quota_exceeded") {
    const { outcome: _, ...exceeded } = admitted;
    const resetsAt = dependencies.quota?.holdTerms().period.resetsAt ?? new Date();
    throw new QuotaExceededError({ ...exceeded, resetsAt });
  }
  return { job: admitted.job, created: admitted.outcome === "created", plan };
}

/**
 * The job's candidate providers when every one accepts users' own keys (the worker then
 * runs it on the user's keys if the user stored one for each, and the job holds
 * nothing); undefined otherwise, or when the candidates are unknown.
 */
export function userKeyProviders(catalog: RouterCatalog | undefined, plan: JobPlan): string[] | undefined {
  if (catalog === undefined || plan.targets.length === 0) return undefined;
  const providers = [...new Set(plan.targets.map((target) => target.provider))];
  const accepting = (name: string) =>
    catalog.providers.find((provider) => provider.name === name)?.acceptsUserKeys === true;
  return providers.every(accepting) ? providers : undefined;
}

/**
 * The quota hold admitting a job with this plan takes (a submission's, a redrive's);
 * undefined without a quota ledger.
 */
export function admissionHold(
  quota: QuotaLedger | undefined,
  plan: JobPlan,
  catalog: CatalogSnapshot | undefined,
): AdmissionHold | undefined {
  const terms = quota?.holdTerms();
  if (terms === undefined) return undefined;
  return {
    periodStart: terms.period.start,
    planLimits: terms.planLimits,
    textTokens: plan.textTokens,
    images: plan.images,
    costMicroUsd: plan.costMicroUsd,
    userKeyProviders: userKeyProviders(catalog?.catalog, plan),
  };
}
