import type { Harness } from "../harness.ts";

/** One submission of a {@link SubmissionStream}, as the client saw it. */
export interface Submission {
  /** The job id, when the API accepted it (202). */
  id?: string;
  statusCode: number;
  /** `error.code` of an error answer. */
  errorCode?: string;
  /** `Retry-After` of an error answer. */
  retryAfter?: string;
  startedAt: number;
  latencyMs: number;
}

/**
 * A steady stream of text-job submissions through the API, from `lanes` clients
 * that each submit, note the answer and pause `pauseMs` (load, not synchronization).
 */
export class SubmissionStream {
  readonly submissions: Submission[] = [];
  readonly #harness: Harness;
  readonly #apiKey: string;
  #stopped = false;
  #lanes: Promise<void>[] = [];

  constructor(harness: Harness, apiKey: string) {
    this.#harness = harness;
    this.#apiKey = apiKey;
  }

  start({ lanes = 2, pauseMs = 20 }: { lanes?: number; pauseMs?: number } = {}): void {
    this.#lanes = Array.from({ length: lanes }, async (_, lane) => {
      for (let index = 0; !this.#stopped; index += 1) {
        const startedAt = Date.now();
        const response = await this.#harness.submit(this.#apiKey, {
          type: "text",
          input: { prompt: `stream ${lane}.${index}`, providerOptions: { mock: { latencyMs: 20 } } },
        });
        const latencyMs = Date.now() - startedAt;
        const body = response.json();
        this.submissions.push({
          statusCode: response.statusCode,
          startedAt,
          latencyMs,
          ...(response.statusCode === 202 ? { id: body.id } : { errorCode: body.error?.code }),
          ...(response.headers["retry-after"] === undefined
            ? {}
            : { retryAfter: String(response.headers["retry-after"]) }),
        });
        await new Promise((resolve) => setTimeout(resolve, pauseMs));
      }
    });
  }

  /** Stops submitting and waits for the requests in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#lanes);
  }

  /** Submissions that started in [from, to). */
  between(from: number, to = Number.POSITIVE_INFINITY): Submission[] {
    return this.submissions.filter((submission) => submission.startedAt >= from && submission.startedAt < to);
  }

  /** Ids of every accepted (202) submission. */
  acceptedIds(): string[] {
    return this.submissions.flatMap((submission) => (submission.id === undefined ? [] : [submission.id]));
  }

  /** Submissions that started at or after `from` with this status. */
  count(statusCode: number, from = 0): number {
    return this.between(from).filter((submission) => submission.statusCode === statusCode).length;
  }
}

/** The largest latency among `submissions` (0 for none). */
export function maxLatency(submissions: Submission[]): number {
  return submissions.reduce((max, submission) => Math.max(max, submission.latencyMs), 0);
}
