import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const read = (path: string) => readFileSync(join(ROOT, path), "utf8");

interface ComposeService {
  command?: string | string[];
  environment?: Record<string, string>;
  ports?: string[];
}

/** There is no Docker engine here: these read the files as compose and kubectl would. */
describe("docker-compose.yml", () => {
  const text = read("docker-compose.yml");
  const compose = parse(text, { merge: true }) as { services: Record<string, ComposeService> };
  const services = Object.entries(compose.services);

  it("says it is for development", () => {
    expect(text.split("\n")[0]).toMatch(/for development only/i);
  });

  it("publishes every port on 127.0.0.1 only", () => {
    const published = services.flatMap(([, service]) => service.ports ?? []);
    expect(published.length).toBeGreaterThan(0);
    for (const port of published) expect(port).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
  });

  it("holds no password: every secret is a required variable from .env", () => {
    const secretNames = /PASSWORD|SECRET/;
    for (const [name, service] of services) {
      for (const [key, value] of Object.entries(service.environment ?? {})) {
        if (!secretNames.test(key)) continue;
        expect(value, `${name}.${key}`).toMatch(/^\$\{[A-Z0-9_]+(:\?[^}]*|:-\$\{[A-Z0-9_]+\})\}$/);
      }
    }
    const genq = compose.services.api?.environment ?? {};
    expect(genq.DATABASE_URL).toContain("${POSTGRES_PASSWORD:?");
    expect(genq.REDIS_URL).toContain("${REDIS_PASSWORD:?");
    expect(genq.GENQ_ADMIN_PASSWORD).toMatch(/^\$\{GENQ_ADMIN_PASSWORD:\?/);
  });

  it("runs Redis with a password", () => {
    const command = [compose.services.redis?.command ?? []].flat().join(" ");
    expect(command).toContain('--requirepass "$$REDIS_PASSWORD"');
    expect(compose.services.redis?.environment?.REDIS_PASSWORD).toMatch(/^\$\{REDIS_PASSWORD:\?/);
  });

  it("lists every required variable in .env.example", () => {
    const required = new Set([...text.matchAll(/\$\{([A-Z0-9_]+):\?/g)].map((match) => match[1]));
    const example = read(".env.example");
    expect(required.size).toBeGreaterThan(0);
    for (const name of required) expect(example).toMatch(new RegExp(`^${name}=`, "m"));
    // The example holds no secret values.
    for (const line of example.split("\n")) {
      if (/^[A-Z0-9_]*(PASSWORD|SECRET|TOKEN|_KEY)=/.test(line)) expect(line).toMatch(/=$/);
    }
  });

  it("binds the worker's health server on the compose network explicitly", () => {
    expect(compose.services.worker?.environment?.GENQ_WORKER_HEALTH_HOST).toBe("0.0.0.0");
  });
});

describe("deploy/kubernetes/genq.yaml", () => {
  it("parses, and binds the worker's health server where probes reach it", () => {
    const documents = parseAllDocuments(read("deploy/kubernetes/genq.yaml"));
    for (const document of documents) expect(document.errors).toEqual([]);
    const worker = documents
      .map((document) => document.toJS())
      .find((resource) => resource?.kind === "Deployment" && resource.metadata?.name === "genq-worker");
    const env = worker.spec.template.spec.containers[0].env as Array<{ name: string; value: string }>;
    expect(env).toContainEqual({ name: "GENQ_WORKER_HEALTH_HOST", value: "0.0.0.0" });
  });
});

describe("Dockerfile", () => {
  it("copies every workspace package's manifest before installing (a missing one fails the frozen install)", () => {
    const dockerfile = read("Dockerfile");
    for (const folder of ["apps", "packages"]) {
      for (const name of readdirSync(join(ROOT, folder))) {
        expect(dockerfile).toContain(`COPY ${folder}/${name}/package.json ${folder}/${name}/`);
      }
    }
  });
});
