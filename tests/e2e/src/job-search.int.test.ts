/**
 * Job search (issue 16 item 3) and operators' views of calls and trends (item 5),
 * through the real API over jobs a real worker ran.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, Harness } from "./harness.ts";

type Json = Record<string, unknown>;
type Page = { data: Json[]; nextCursor: string | null };

let harness: Harness;
let owner: { apiKey: string; userId: string };
let stranger: { apiKey: string; userId: string };
const ids: Record<string, string> = {};

const OPERATOR = `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString("base64")}`;

function list(apiKey: string, query: string) {
  return harness.app.inject({
    method: "GET",
    url: `/v1/jobs?${query}`,
    headers: { authorization: `Bearer ${apiKey}` },
  });
}

function operator(url: string) {
  return harness.app.inject({ method: "GET", url, headers: { authorization: OPERATOR } });
}

function listedIds(response: { json(): unknown }): string[] {
  return (response.json() as Page).data.map((job) => String(job.id));
}

beforeAll(async () => {
  harness = await new Harness().start();
  owner = await harness.createUser(undefined, "enterprise");
  stranger = await harness.createUser();
  const bodies: Record<string, Json> = {
    acme: {
      type: "text",
      input: { prompt: "search one" },
      metadata: { customer: "acme", env: "test", tier: "3" },
    },
    globex: {
      type: "text",
      input: { prompt: "search two" },
      metadata: { customer: "globex", tier: 3, vip: true },
    },
    acmeProd: {
      type: "text",
      priority: "high",
      input: { prompt: "search three" },
      metadata: { customer: "acme", env: "prod" },
    },
  };
  for (const [name, body] of Object.entries(bodies)) {
    const submitted = await harness.submit(owner.apiKey, body);
    expect(submitted.statusCode).toBe(202);
    ids[name] = (submitted.json() as { id: string }).id;
  }
  const failed = await harness.submit(owner.apiKey, {
    type: "text",
    input: { prompt: "search four", providerOptions: { mock: { fail: "invalid_request" } } },
    metadata: { customer: "acme" },
  });
  ids.failed = (failed.json() as { id: string }).id;
  const theirs = await harness.submit(stranger.apiKey, {
    type: "text",
    input: { prompt: "x" },
    metadata: { customer: "acme" },
  });
  for (const id of Object.values(ids)) await harness.waitForJob(owner.apiKey, id);
  await harness.waitForJob(stranger.apiKey, (theirs.json() as { id: string }).id);
});

afterAll(async () => {
  await harness?.close();
});

describe("job search", () => {
  it("finds a user's jobs by metadata pairs, and only that user's", async () => {
    const acme = await list(owner.apiKey, "metadata=customer:acme");
    expect(acme.statusCode).toBe(200);
    expect(listedIds(acme).sort()).toEqual([ids.acme, ids.acmeProd, ids.failed].sort());
    const prod = await list(owner.apiKey, "metadata=customer:acme&metadata=env:prod");
    expect(listedIds(prod)).toEqual([ids.acmeProd]);
    expect(listedIds(await list(owner.apiKey, "metadata=customer:initech"))).toEqual([]);
    // The stranger's own acme job only.
    const theirs = await list(stranger.apiKey, "metadata=customer:acme");
    expect(listedIds(theirs)).toHaveLength(1);
    expect(listedIds(theirs)).not.toContain(ids.acme);
  });

  it("matches a metadata value a query string spells as a number or boolean both as that and as a string", async () => {
    expect(listedIds(await list(owner.apiKey, "metadata=tier:3")).sort()).toEqual(
      [ids.acme, ids.globex].sort(),
    );
    expect(listedIds(await list(owner.apiKey, "metadata=tier:3&metadata=customer:globex"))).toEqual([
      ids.globex,
    ]);
    expect(listedIds(await list(owner.apiKey, "metadata=vip:true"))).toEqual([ids.globex]);
    expect(listedIds(await list(owner.apiKey, "metadata=tier:03"))).toEqual([]);
  });

  it("filters by status, error code, priority and time, and pages with the cursor", async () => {
    expect(listedIds(await list(owner.apiKey, "status=failed"))).toEqual([ids.failed]);
    expect(listedIds(await list(owner.apiKey, "errorCode=invalid_request"))).toEqual([ids.failed]);
    expect(listedIds(await list(owner.apiKey, "priority=high"))).toEqual([ids.acmeProd]);
    expect(listedIds(await list(owner.apiKey, `to=${encodeURIComponent("2000-01-01T00:00:00Z")}`))).toEqual(
      [],
    );

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const response = await list(
        owner.apiKey,
        `metadata=customer:acme&limit=1${cursor === null ? "" : `&cursor=${cursor}`}`,
      );
      const page = response.json() as Page;
      expect(page.data.length).toBeLessThanOrEqual(1);
      seen.push(...page.data.map((job) => String(job.id)));
      cursor = page.nextCursor;
    } while (cursor !== null);
    expect(seen).toEqual([ids.failed, ids.acmeProd, ids.acme].sort().reverse());
  });

  it("answers 400 with the field to fix for malformed filters", async () => {
    for (const query of [
      "metadata=nocolon",
      "batchId=123",
      "from=2026-12-03T00:00:00Z&to=2026-12-02T00:00:00Z",
      "priority=asap",
    ]) {
      const response = await list(owner.apiKey, query);
      expect(response.statusCode, query).toBe(400);
      expect(response.json(), query).toMatchObject({ error: { code: "invalid_request" } });
    }
  });

  it("searches across users for operators, by metadata and user", async () => {
    const all = await operator("/v1/admin/jobs?metadata=customer:acme");
    expect(all.statusCode).toBe(200);
    expect(listedIds(all)).toHaveLength(4);
    const mine = await operator(`/v1/admin/jobs?metadata=customer:acme&userId=${owner.userId}`);
    expect(listedIds(mine)).toHaveLength(3);
    expect((mine.json() as Page).data[0]).toMatchObject({ userId: owner.userId });
    expect((await harness.app.inject({ method: "GET", url: "/v1/admin/jobs" })).statusCode).toBe(401);
  });
});

describe("operator views", () => {
  it("lists provider calls across jobs with filters and a cursor", async () => {
    const errors = await operator("/v1/admin/calls?outcome=error");
    expect(errors.statusCode).toBe(200);
    const errorCalls = (errors.json() as Page).data;
    expect(errorCalls.map((entry) => entry.jobId)).toContain(ids.failed);
    expect(errorCalls.every((entry) => entry.outcome === "error")).toBe(true);

    const firstPage = await operator("/v1/admin/calls?outcome=ok&limit=2");
    const first = firstPage.json() as Page;
    expect(first.data).toHaveLength(2);
    expect(first.nextCursor).not.toBeNull();
    const second = (
      await operator(`/v1/admin/calls?outcome=ok&limit=2&cursor=${first.nextCursor}`)
    ).json() as Page;
    const firstIds = new Set(first.data.map((entry) => entry.id));
    expect(second.data.length).toBeGreaterThan(0);
    expect(second.data.some((entry) => firstIds.has(entry.id))).toBe(false);

    const provider = String(first.data[0]?.provider);
    const byProvider = (await operator(`/v1/admin/calls?provider=${provider}`)).json() as Page;
    expect(byProvider.data.every((entry) => entry.provider === provider)).toBe(true);
    expect((await operator("/v1/admin/calls?cursor=garbage")).statusCode).toBe(400);
  });

  it("reports daily usage and cost per provider and model", async () => {
    const trends = await operator("/v1/admin/usage/trends");
    expect(trends.statusCode).toBe(200);
    const points = (trends.json() as Page).data as Array<{ day: string; jobs: number; provider: string }>;
    const today = new Date().toISOString().slice(0, 10);
    const jobsToday = points
      .filter((point) => point.day === today)
      .reduce((sum, point) => sum + point.jobs, 0);
    // Four completed jobs (three of the owner, one of the stranger); the failed one used nothing.
    expect(jobsToday).toBe(4);
    const paged = (await operator("/v1/admin/usage/trends?limit=1")).json() as Page;
    expect(paged.data).toHaveLength(1);
    expect(
      (await operator("/v1/admin/usage/trends?from=2026-12-03T00:00:00Z&to=2026-12-02T00:00:00Z")).statusCode,
    ).toBe(400);
  });
});
