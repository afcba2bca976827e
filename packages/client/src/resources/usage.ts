import type { HttpClient, RequestOptions } from "../http-client.ts";
import type { Usage, UsageQuery } from "../types.ts";

/** `/v1/usage`: usage, cost, this month's quota and a month-end projection. */
export class UsageResource {
  readonly #http: HttpClient;

  constructor(http: HttpClient) {
    this.#http = http;
  }

  /** Totals over `[from, to)` (default: this month) grouped by day, provider, model or type. */
  get(query: UsageQuery = {}, options: RequestOptions = {}): Promise<Usage> {
    return this.#http.json({ method: "GET", path: "/v1/usage", query: { ...query }, ...options });
  }
}
