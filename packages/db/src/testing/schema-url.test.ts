import { describe, expect, it } from "vitest";
import { withSchemaUrl } from "./schema-url.ts";

describe("withSchemaUrl", () => {
  it("adds Prisma's schema parameter and a libpq search_path option encoded with %20", () => {
    expect(withSchemaUrl("postgresql://postgres@127.0.0.1:5432/test", "t_abc")).toBe(
      "postgresql://postgres@127.0.0.1:5432/test?schema=t_abc&options=-c%20search_path%3Dt_abc",
    );
  });

  it("keeps other parameters and existing options, and replaces a previous schema", () => {
    const url = new URL(
      withSchemaUrl(
        "postgresql://u:p@db:5432/app?sslmode=disable&schema=old&options=-c%20statement_timeout%3D5000",
        "t_new",
      ),
    );
    expect(url.searchParams.get("sslmode")).toBe("disable");
    expect(url.searchParams.getAll("schema")).toEqual(["t_new"]);
    expect(url.searchParams.get("options")).toBe("-c statement_timeout=5000 -c search_path=t_new");
    expect(url.password).toBe("p");
  });

  it("rejects schema names that would need quoting", () => {
    expect(() => withSchemaUrl("postgresql://db/app", 'bad"name')).toThrow(/schema name/);
    expect(() => withSchemaUrl("postgresql://db/app", "Upper")).toThrow(/schema name/);
  });
});
