import { renderPng } from "@genq/providers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Harness } from "./harness.ts";

/** The path and query of a signed link (the harness's API answers through inject). */
function pathOf(url: string): string {
  const parsed = new URL(url);
  return `${parsed.pathname}${parsed.search}`;
}

describe("assets served under /v1/assets", () => {
  let harness: Harness;

  beforeAll(async () => {
    harness = await new Harness().start({ startWorker: false });
  });
  afterAll(async () => {
    await harness.close();
  });

  async function fetchStored(key: string, bytes: Uint8Array, contentType: string, filename?: string) {
    await harness.storage.put(key, bytes, { contentType });
    const url = await harness.storage.signedGetUrl(key, {
      expiresInSeconds: 60,
      ...(filename === undefined ? {} : { filename }),
    });
    return harness.app.inject({ method: "GET", url: pathOf(url) });
  }

  it("serves an image with nosniff and a sandbox CSP", async () => {
    const png = renderPng({ width: 8, height: 8, seed: "asset" });
    const response = await fetchStored("images/job-a/0.png", png, "image/png");
    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toBe("image/png");
    expect(response.headers["x-content-type-options"]).toBe("nosniff");
    expect(response.headers["content-security-policy"]).toBe("default-src 'none'; sandbox");
    expect(response.rawPayload).toEqual(Buffer.from(png));
  });

  it("serves a stored SVG with script as an octet-stream attachment, never as a page", async () => {
    const svg = Buffer.from(
      '<svg xmlns="http://www.w3.org/2000/svg"><script>fetch("/v1/jobs",{credentials:"include"})</script></svg>',
    );
    const response = await fetchStored("images/job-b/0.svg", svg, "image/svg+xml");
    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toBe("application/octet-stream");
    expect(response.headers["content-disposition"]).toBe("attachment");
    expect(response.headers["x-content-type-options"]).toBe("nosniff");
    expect(response.headers["content-security-policy"]).toBe("default-src 'none'; sandbox");
  });

  it("serves HTML stored under an image key as an attachment with the requested name", async () => {
    const html = Buffer.from("<html><script>alert(document.domain)</script></html>");
    const response = await fetchStored("images/job-c/0.html", html, "text/html", "image-0.png");
    expect(response.headers["content-type"]).toBe("application/octet-stream");
    expect(response.headers["content-disposition"]).toMatch(/^attachment; filename="image-0.png"/);
    expect(response.headers["content-security-policy"]).toBe("default-src 'none'; sandbox");
  });

  it("sends the same protective headers with a refused link", async () => {
    const response = await harness.app.inject({
      method: "GET",
      url: "/v1/assets/images/job-a/0.png?expires=1&signature=forged",
    });
    expect(response.statusCode).toBe(403);
    expect(response.headers["x-content-type-options"]).toBe("nosniff");
    expect(response.headers["content-security-policy"]).toBe("default-src 'none'; sandbox");
  });
});
