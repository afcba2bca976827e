import {
  type CreateJobRequest,
  describeProviderOptionIssue,
  GenqError,
  ProviderKind,
  providerOptionIssues,
} from "@genq/core";
import type { RouterCatalog } from "@genq/providers";

/**
 * Refuses `providerOptions` the named provider's kind does not allow, naming the
 * option. `providerOptions` is keyed by provider *name*, and operators name
 * OpenAI-compatible providers freely, so the kind comes from the catalog the
 * workers publish. Without a catalog (no worker has started yet) the built-in
 * names (`openai`, `anthropic`, `gemini`, `mock`) stand for their kind; any other
 * name was checked by the schema against every kind's list (an option no kind
 * allows is refused), and the adapter, which knows its kind, checks again before
 * it sends anything. A name the catalog does not list is read by no adapter.
 */
export function checkProviderOptions(catalog: RouterCatalog | undefined, body: CreateJobRequest): void {
  const { providerOptions } = body.input;
  if (providerOptions === undefined) return;
  const kinds = new Map(catalog?.providers.map((provider) => [provider.name, provider.type]));
  const kindOf = (name: string): ProviderKind | undefined => {
    const kind = ProviderKind.safeParse(catalog === undefined ? name : kinds.get(name));
    return kind.success ? kind.data : undefined;
  };
  const [issue] = providerOptionIssues(providerOptions, body.type, kindOf);
  if (issue === undefined) return;
  const field = `input.providerOptions.${issue.path[0]}.${issue.path[1]}`;
  throw new GenqError("invalid_request", `body.${describeProviderOptionIssue(issue)}`, {
    details: { location: "body", field },
  });
}
