import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, Harness } from "./harness.ts";

const OPERATOR = `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString("base64")}`;
const MALFORMED_ID = "not-a-uuid";
const UNKNOWN_ID = "0190a0b0-0000-7000-8000-000000000000";

interface UserBody {
  id: string;
  object: "user";
  email: string;
  plan: string;
  disabled: boolean;
  disabledAt: string | null;
  createdAt: string;
}

interface KeyBody {
  id: string;
  userId: string;
  name: string | null;
  prefix: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

describe("admin API for users, API keys and job call logs", () => {
  const harness = new Harness();

  beforeAll(async () => {
    await harness.start({ startWorker: false });
  });
  afterAll(() => harness.close());

  function admin(method: "GET" | "POST" | "PATCH", url: string, payload?: unknown, authorization = OPERATOR) {
    return harness.app.inject({
      method,
      url: `/v1/admin${url}`,
      headers: { authorization },
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    });
  }

  /** Answers the status of `GET /v1/jobs` with the given API key. */
  async function keyStatus(apiKey: string): Promise<number> {
    const response = await harness.app.inject({
      method: "GET",
      url: "/v1/jobs",
      headers: { authorization: `Bearer ${apiKey}` },
    });
    return response.statusCode;
  }

  /** An email domain of its own, so list filters only see one test's users. */
  function domain(): string {
    return `${randomBytes(4).toString("hex")}.example.com`;
  }

  async function createUser(email = `someone@${domain()}`, plan?: string) {
    const response = await admin("POST", "/users", plan === undefined ? { email } : { email, plan });
    expect(response.statusCode).toBe(201);
    return response.json() as { user: UserBody; key: KeyBody; apiKey: string };
  }

  it("refuses every route group without operator credentials, with wrong ones, or with a user's API key", async () => {
    const { user, key, apiKey } = await createUser();
    const routes: Array<["GET" | "POST" | "PATCH", string, unknown?]> = [
      ["POST", "/users", { email: `x@${domain()}` }],
      ["GET", "/users"],
      ["GET", `/users/${user.id}`],
      ["PATCH", `/users/${user.id}`, { plan: "enterprise" }],
      ["POST", `/users/${user.id}/api-keys`, {}],
      ["GET", `/users/${user.id}/api-keys`],
      ["GET", `/api-keys?prefix=${key.prefix}`],
      ["POST", `/api-keys/${key.id}/revoke`],
      ["GET", `/jobs/${UNKNOWN_ID}/calls`],
    ];
    const wrong = `Basic ${Buffer.from(`${ADMIN.user}:not-the-password`).toString("base64")}`;
    for (const [method, url, payload] of routes) {
      for (const authorization of ["", wrong, `Bearer ${apiKey}`]) {
        const response = await admin(method, url, payload, authorization);
        expect(response.statusCode, `${method} ${url} with "${authorization.slice(0, 6)}"`).toBe(401);
        expect(response.json().error.code).toBe("unauthorized");
        expect(response.headers["www-authenticate"]).toContain("Basic");
      }
    }
    // Nothing was changed by the refused requests.
    expect((await admin("GET", `/users/${user.id}`)).json().plan).toBe("basic");
    expect(await keyStatus(apiKey)).toBe(200);
  });

  it("creates a user whose key works on /v1/jobs, and answers 409 for an email in use", async () => {
    const email = `New.User@${domain()}`;
    const created = await createUser(email, "professional");
    expect(created.user).toMatchObject({
      object: "user",
      email: email.toLowerCase(),
      plan: "professional",
      disabled: false,
      disabledAt: null,
    });
    expect(created.apiKey.startsWith(`${created.key.prefix}_`)).toBe(true);
    expect(created.key).toMatchObject({ userId: created.user.id, revokedAt: null });
    expect(await keyStatus(created.apiKey)).toBe(200);

    const submitted = await harness.submit(created.apiKey, { type: "text", input: { prompt: "hello" } });
    expect(submitted.statusCode).toBe(202);

    const duplicate = await admin("POST", "/users", { email: email.toUpperCase() });
    expect(duplicate.statusCode).toBe(409);
    expect(duplicate.json().error).toMatchObject({ code: "conflict" });

    const fetched = await admin("GET", `/users/${created.user.id}`);
    expect(fetched.statusCode).toBe(200);
    expect(fetched.json()).toEqual(created.user);
  });

  it("lists users newest first with filters and cursor pagination", async () => {
    const at = domain();
    const ids: string[] = [];
    for (let index = 0; index < 5; index += 1) {
      ids.push((await createUser(`user${index}@${at}`, index % 2 === 0 ? "basic" : "enterprise")).user.id);
    }
    await admin("PATCH", `/users/${ids[4]}`, { disabled: true });

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = `email=${at}&limit=2${cursor === null ? "" : `&cursor=${cursor}`}`;
      const response = await admin("GET", `/users?${query}`);
      expect(response.statusCode).toBe(200);
      const page = response.json() as { object: string; data: UserBody[]; nextCursor: string | null };
      expect(page.object).toBe("list");
      expect(page.data.length).toBeLessThanOrEqual(2);
      seen.push(...page.data.map((user) => user.id));
      cursor = page.nextCursor;
      pages += 1;
    } while (cursor !== null);
    expect(pages).toBe(3);
    expect(seen).toEqual([...ids].reverse());

    const listIds = async (query: string) => {
      const response = await admin("GET", `/users?${query}`);
      expect(response.statusCode, query).toBe(200);
      return (response.json().data as UserBody[]).map((user) => user.id);
    };
    expect(await listIds(`email=${at}&plan=enterprise`)).toEqual([ids[3], ids[1]]);
    expect(await listIds(`email=${at}&disabled=true`)).toEqual([ids[4]]);
    expect(await listIds(`email=${at}&disabled=false&plan=basic`)).toEqual([ids[2], ids[0]]);
    expect(await listIds(`email=USER3@${at.toUpperCase()}`)).toEqual([ids[3]]);
  });

  it("changes a user's plan", async () => {
    const { user } = await createUser();
    const response = await admin("PATCH", `/users/${user.id}`, { plan: "enterprise" });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ ...user, plan: "enterprise" });
    expect((await admin("GET", `/users/${user.id}`)).json().plan).toBe("enterprise");
  });

  it("disables a user, whose API keys then answer 401, and enables it again", async () => {
    const { user, apiKey } = await createUser();
    const second = (await admin("POST", `/users/${user.id}/api-keys`, { name: "second" })).json();
    expect(await keyStatus(apiKey)).toBe(200);

    const disabled = await admin("PATCH", `/users/${user.id}`, { disabled: true });
    expect(disabled.statusCode).toBe(200);
    expect(disabled.json()).toMatchObject({ disabled: true, disabledAt: expect.any(String) });
    expect(await keyStatus(apiKey)).toBe(401);
    expect(await keyStatus(second.apiKey)).toBe(401);
    const refused = await harness.submit(apiKey, { type: "text", input: { prompt: "no" } });
    expect(refused.statusCode).toBe(401);

    // Disabling again keeps the time it was first disabled.
    const again = await admin("PATCH", `/users/${user.id}`, { disabled: true });
    expect(again.json().disabledAt).toBe(disabled.json().disabledAt);

    const enabled = await admin("PATCH", `/users/${user.id}`, { disabled: false });
    expect(enabled.json()).toMatchObject({ disabled: false, disabledAt: null, plan: "basic" });
    expect(await keyStatus(apiKey)).toBe(200);
    expect(await keyStatus(second.apiKey)).toBe(200);
  });

  it("creates, lists, finds by prefix and revokes API keys without ever showing a secret again", async () => {
    const { user, key: first, apiKey: firstSecret } = await createUser();
    const created = await admin("POST", `/users/${user.id}/api-keys`, { name: "ci" });
    expect(created.statusCode).toBe(201);
    const { key, apiKey } = created.json() as { key: KeyBody; apiKey: string };
    expect(key).toMatchObject({ userId: user.id, name: "ci", revokedAt: null });
    expect(await keyStatus(apiKey)).toBe(200);
    // The body is optional.
    const unnamed = await harness.app.inject({
      method: "POST",
      url: `/v1/admin/users/${user.id}/api-keys`,
      headers: { authorization: OPERATOR },
    });
    expect(unnamed.statusCode).toBe(201);
    expect(unnamed.json().key.name).toBeNull();

    const listed = await admin("GET", `/users/${user.id}/api-keys`);
    expect(listed.statusCode).toBe(200);
    expect((listed.json().data as KeyBody[]).map((candidate) => candidate.id)).toEqual([
      unnamed.json().key.id,
      key.id,
      first.id,
    ]);
    for (const secret of [apiKey, firstSecret]) expect(listed.body).not.toContain(secret.slice(12));
    expect(listed.body).not.toMatch(/secret|hash/i);

    const found = await admin("GET", `/api-keys?prefix=${key.prefix.slice(0, 8)}`);
    expect(found.statusCode).toBe(200);
    const foundKeys = found.json().data as KeyBody[];
    expect(foundKeys.find((candidate) => candidate.id === key.id)).toMatchObject({ userId: user.id });
    expect(foundKeys.every((candidate) => candidate.prefix.startsWith(key.prefix.slice(0, 8)))).toBe(true);
    expect(found.body).not.toContain(apiKey.slice(12));
    const exact = (await admin("GET", `/api-keys?prefix=${key.prefix}`)).json().data as KeyBody[];
    expect(exact).toEqual([{ ...key, lastUsedAt: expect.any(String) }]);

    const revoked = await admin("POST", `/api-keys/${key.id}/revoke`);
    expect(revoked.statusCode).toBe(200);
    expect(revoked.json()).toMatchObject({ id: key.id, revokedAt: expect.any(String) });
    expect(await keyStatus(apiKey)).toBe(401);
    // Idempotent: the second revoke answers the same key and time.
    expect((await admin("POST", `/api-keys/${key.id}/revoke`)).json()).toEqual(revoked.json());

    // By visible prefix; the user's other keys keep working.
    const byPrefix = await admin("POST", `/api-keys/${first.prefix}/revoke`);
    expect(byPrefix.statusCode).toBe(200);
    expect(byPrefix.json().id).toBe(first.id);
    expect(await keyStatus(firstSecret)).toBe(401);
    expect(await keyStatus(unnamed.json().apiKey)).toBe(200);

    for (const unknown of [UNKNOWN_ID, "gq_nothere1", MALFORMED_ID]) {
      const response = await admin("POST", `/api-keys/${unknown}/revoke`);
      expect(response.statusCode, unknown).toBe(404);
      expect(response.json().error.code).toBe("not_found");
    }
  });

  it("shows the provider call log of any user's job across its attempts", async () => {
    const { user, apiKey } = await createUser();
    await harness.startInProcessWorker();
    const submitted = await harness.submit(apiKey, {
      type: "text",
      input: {
        prompt: `flaky ${Date.now()}`,
        providerOptions: { mock: { fail: "provider_unavailable", failTimes: 2 } },
      },
    });
    const jobId = submitted.json().id as string;
    const finished = await harness.waitForJob(apiKey, jobId);
    expect(finished.status).toBe("completed");

    const response = await admin("GET", `/jobs/${jobId}/calls`);
    expect(response.statusCode).toBe(200);
    const log = response.json() as {
      jobId: string;
      userId: string;
      status: string;
      calls: Array<Record<string, unknown>>;
    };
    expect(log).toMatchObject({ jobId, userId: user.id, status: "completed" });
    expect(log.calls.map((call) => `${call.attempt}:${call.seq}:${call.outcome}`)).toEqual([
      "1:1:error",
      "1:2:error",
      "2:1:ok",
    ]);
    expect(log.calls[0]).toMatchObject({
      provider: "mock",
      errorCode: "provider_unavailable",
      errorMessage: expect.any(String),
      startedAt: expect.any(String),
      latencyMs: expect.any(Number),
    });
    expect(log.calls[2]).toMatchObject({
      provider: "mock",
      model: expect.any(String),
      inputTokens: expect.any(Number),
      outputTokens: expect.any(Number),
    });
    // The calls the job's owner sees, with the provider's error text the owner gets only as a generic message.
    const ownerCalls = finished.calls as Array<Record<string, unknown>>;
    expect(log.calls.map(({ errorMessage: _text, ...call }) => call)).toEqual(
      ownerCalls.map(({ errorMessage: _generic, ...call }) => call),
    );
    expect(log.calls[0]?.errorMessage).toBe("mock: simulated provider_unavailable");
    expect(ownerCalls[0]?.errorMessage).toBe("The provider was unavailable; try again later.");

    const unknown = await admin("GET", `/jobs/${UNKNOWN_ID}/calls`);
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error.code).toBe("not_found");
  });

  it("answers 400 with a code for bad input", async () => {
    const { user } = await createUser();
    const cases: Array<["GET" | "POST" | "PATCH", string, unknown?]> = [
      ["POST", "/users", { email: "not-an-email" }],
      ["POST", "/users", { email: `a@${domain()}`, plan: "platinum" }],
      ["POST", "/users", { email: `a@${domain()}`, admin: true }],
      ["POST", "/users", {}],
      ["GET", "/users?limit=0"],
      ["GET", "/users?limit=101"],
      ["GET", "/users?disabled=maybe"],
      ["GET", "/users?plan=platinum"],
      ["GET", "/users?cursor=bm90LWEtY3Vyc29y"],
      ["GET", "/users?unknown=1"],
      ["PATCH", `/users/${user.id}`, {}],
      ["PATCH", `/users/${user.id}`, { disabled: "yes" }],
      ["PATCH", `/users/${user.id}`, { plan: "platinum" }],
      ["PATCH", `/users/${user.id}`, { email: "other@example.com" }],
      ["POST", `/users/${user.id}/api-keys`, { name: "" }],
      ["POST", `/users/${user.id}/api-keys`, { name: 7 }],
      ["GET", "/api-keys"],
      ["GET", "/api-keys?prefix=gq_"],
      ["GET", "/api-keys?prefix=gq_a%25"],
      // A full key is longer than any prefix: secrets stay out of query strings.
      ["GET", `/api-keys?prefix=${(await createUser()).apiKey}`],
    ];
    for (const [method, url, payload] of cases) {
      const response = await admin(method, url, payload);
      expect(response.statusCode, `${method} ${url} ${JSON.stringify(payload)}`).toBe(400);
      expect(response.json().error).toMatchObject({ code: "invalid_request", message: expect.any(String) });
    }
    expect((await admin("GET", `/users/${user.id}`)).json()).toEqual(user);
  });

  it("answers 404 for malformed and unknown ids", async () => {
    const cases: Array<["GET" | "POST" | "PATCH", string, unknown?]> = [];
    for (const id of [MALFORMED_ID, UNKNOWN_ID]) {
      cases.push(
        ["GET", `/users/${id}`],
        ["PATCH", `/users/${id}`, { plan: "basic" }],
        ["POST", `/users/${id}/api-keys`, {}],
        ["GET", `/users/${id}/api-keys`],
        ["GET", `/jobs/${id}/calls`],
      );
    }
    for (const [method, url, payload] of cases) {
      const response = await admin(method, url, payload);
      expect(response.statusCode, `${method} ${url}`).toBe(404);
      expect(response.json().error.code).toBe("not_found");
    }
  });
});
