import { describe, expect, it } from "vitest";
import { CreateJobRequest, ImageJobInput } from "./index.ts";

const UPLOAD = "0193a2b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b";
const MASK = "0193a2b4-5c6d-7e8f-9a0b-1c2d3e4f5a6c";

function issues(input: unknown): Array<{ path: PropertyKey[]; message: string }> {
  const result = ImageJobInput.safeParse(input);
  if (result.success) return [];
  return result.error.issues.map((issue) => ({ path: issue.path, message: issue.message }));
}

describe("ImageJobInput", () => {
  it("defaults the operation to generate", () => {
    expect(ImageJobInput.parse({ prompt: "a fox" })).toMatchObject({ operation: "generate", n: 1 });
  });

  it("accepts an edit with image and mask, and a variation without a prompt", () => {
    expect(issues({ operation: "edit", prompt: "add a hat", image: UPLOAD, mask: MASK })).toEqual([]);
    expect(issues({ operation: "edit", prompt: "add a hat", image: UPLOAD })).toEqual([]);
    expect(issues({ operation: "variation", image: UPLOAD, n: 2 })).toEqual([]);
  });

  it("requires a prompt except for variations, naming the field", () => {
    expect(issues({})).toEqual([{ path: ["prompt"], message: expect.stringMatching(/prompt is required/) }]);
    expect(issues({ operation: "edit", image: UPLOAD })).toEqual([
      { path: ["prompt"], message: 'prompt is required for operation "edit" (only "variation" may omit it)' },
    ]);
  });

  it("requires an image for edits and variations, naming the field", () => {
    for (const operation of ["edit", "variation"]) {
      expect(issues({ operation, prompt: "x" })).toEqual([
        { path: ["image"], message: expect.stringContaining(`required for operation "${operation}"`) },
      ]);
    }
  });

  it("refuses an image on a generation and a mask outside edits", () => {
    expect(issues({ prompt: "x", image: UPLOAD })).toEqual([
      { path: ["image"], message: expect.stringContaining('only for operation "edit" or "variation"') },
    ]);
    expect(issues({ operation: "variation", image: UPLOAD, mask: MASK })).toEqual([
      { path: ["mask"], message: 'mask is only for operation "edit"' },
    ]);
  });

  it("refuses an image that is not an upload id", () => {
    expect(issues({ operation: "variation", image: "../etc/passwd" })).toEqual([
      { path: ["image"], message: "must be the id of an upload (POST /v1/uploads)" },
    ]);
  });

  it("reports the path under input in a job request", () => {
    const result = CreateJobRequest.safeParse({ type: "image", input: { operation: "edit", prompt: "x" } });
    expect(result.error?.issues[0]?.path).toEqual(["input", "image"]);
  });
});
