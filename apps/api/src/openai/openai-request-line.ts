import { type ChatMessage, type TextJobInput, validateBatchItem } from "@genq/core";
import type { OpenAIInvalidLine } from "@genq/db";

/** The one endpoint genq runs batch requests for. */
export const CHAT_COMPLETIONS_URL = "/v1/chat/completions";

/** Endpoints OpenAI's Batch API knows that genq does not serve (each gets a clear per-line error). */
const UNSUPPORTED_URLS: Readonly<Record<string, string>> = {
  "/v1/embeddings": "genq has no embeddings",
  "/v1/responses": "genq serves chat completions only; send the request to /v1/chat/completions",
  "/v1/completions": "genq serves chat completions only; send the request to /v1/chat/completions",
  "/v1/moderations": "genq has no moderations",
};

/** The longest `custom_id` accepted, in characters. */
export const MAX_CUSTOM_ID_LENGTH = 512;

/**
 * Chat-completion parameters genq accepts and ignores: they change who is billed or
 * what is stored on OpenAI's side, not the answer. Anything else not mapped below
 * (tools, response_format, logprobs, n > 1, ...) is refused per line, never dropped
 * silently, since the answer would differ from what the request asked for.
 */
const IGNORED_PARAMETERS: ReadonlySet<string> = new Set([
  "user",
  "store",
  "metadata",
  "service_tier",
  "safety_identifier",
  "prompt_cache_key",
]);

/** Parameters that are accepted when they ask for the default. */
const DEFAULT_ONLY: Readonly<Record<string, unknown>> = { n: 1, stream: false, logprobs: false };

/** One request line, checked. */
export type CheckedRequestLine =
  | { valid: true; customId: string; model: string; input: TextJobInput }
  | { valid: false; customId: string | undefined; error: Omit<OpenAIInvalidLine, "line"> };

function invalid(
  customId: string | undefined,
  code: string,
  message: string,
  param: string | null = null,
): CheckedRequestLine {
  return { valid: false, customId, error: { code, message, param } };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A message's text: a string, or the text parts of an array of content parts. */
function messageText(content: unknown): string | { unsupported: string } {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return { unsupported: "content must be a string or an array of text parts" };
  const texts: string[] = [];
  for (const part of content) {
    if (!isObject(part) || part.type !== "text" || typeof part.text !== "string") {
      const type = isObject(part) && typeof part.type === "string" ? part.type : "unknown";
      return { unsupported: `content parts of type \`${type}\` are not supported; send text parts` };
    }
    texts.push(part.text);
  }
  return texts.join("\n");
}

/** OpenAI chat messages as genq's (`developer` is a system message). */
function toMessages(raw: unknown): ChatMessage[] | { param: string; message: string } {
  if (!Array.isArray(raw) || raw.length === 0) {
    return { param: "body.messages", message: "body.messages must be a non-empty array" };
  }
  const messages: ChatMessage[] = [];
  for (const [index, message] of raw.entries()) {
    const param = `body.messages[${index}]`;
    if (!isObject(message)) return { param, message: `${param} must be an object` };
    const role = message.role === "developer" ? "system" : message.role;
    if (role !== "system" && role !== "user" && role !== "assistant") {
      return {
        param: `${param}.role`,
        message: `${param}.role \`${String(message.role)}\` is not supported (system, developer, user, assistant)`,
      };
    }
    const text = messageText(message.content);
    if (typeof text !== "string")
      return { param: `${param}.content`, message: `${param}.${text.unsupported}` };
    messages.push({ role, content: text });
  }
  return messages;
}

/** The chat-completion body as a genq text input, or why it cannot be one. */
function toTextInput(
  body: Record<string, unknown>,
): { ok: true; input: TextJobInput } | { ok: false; param: string; message: string } {
  const messages = toMessages(body.messages);
  if (!Array.isArray(messages)) return { ok: false, ...messages };
  const input: Record<string, unknown> = { messages };
  for (const [key, value] of Object.entries(body)) {
    if (key === "model" || key === "messages" || value === null || IGNORED_PARAMETERS.has(key)) continue;
    switch (key) {
      case "max_tokens":
      case "max_completion_tokens":
        input.maxTokens = value;
        break;
      case "temperature":
        input.temperature = value;
        break;
      case "top_p":
        input.topP = value;
        break;
      case "stop":
        input.stop = typeof value === "string" ? [value] : value;
        break;
      default:
        if (key in DEFAULT_ONLY && DEFAULT_ONLY[key] === value) break;
        return {
          ok: false,
          param: `body.${key}`,
          message: `body.${key} is not supported by genq's batch endpoint`,
        };
    }
  }
  // max_completion_tokens wins over the older max_tokens when both are sent, as at OpenAI.
  if (typeof body.max_completion_tokens === "number") input.maxTokens = body.max_completion_tokens;
  const checked = validateBatchItem("text", 0, input);
  if (!checked.valid) return { ok: false, param: "body", message: `body: ${checked.message}` };
  return { ok: true, input: checked.input as TextJobInput };
}

/**
 * Checks one line of a batch input file (OpenAI's request line format:
 * `{custom_id, method: "POST", url: "/v1/chat/completions", body: {model, messages, ...}}`)
 * and maps its body to a genq text input. The codes are those OpenAI's batch
 * `errors.data[]` uses where it has one (`invalid_json_line`), else a short name
 * of the problem; `param` names the field.
 */
export function checkRequestLine(line: string): CheckedRequestLine {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return invalid(undefined, "invalid_json_line", "This line is not parseable as valid JSON.");
  }
  if (!isObject(value)) return invalid(undefined, "invalid_json_line", "This line is not a JSON object.");
  const customId = typeof value.custom_id === "string" ? value.custom_id : undefined;
  if (customId === undefined || customId.length === 0) {
    return invalid(
      undefined,
      "missing_required_parameter",
      "custom_id must be a non-empty string",
      "custom_id",
    );
  }
  if (customId.length > MAX_CUSTOM_ID_LENGTH) {
    return invalid(
      customId,
      "invalid_value",
      `custom_id must be at most ${MAX_CUSTOM_ID_LENGTH} characters`,
      "custom_id",
    );
  }
  if (value.method !== "POST") {
    return invalid(customId, "invalid_value", "method must be `POST`", "method");
  }
  if (value.url !== CHAT_COMPLETIONS_URL) {
    const reason = typeof value.url === "string" ? UNSUPPORTED_URLS[value.url] : undefined;
    return invalid(
      customId,
      "unsupported_url",
      `url \`${String(value.url)}\` is not supported${reason === undefined ? "" : ` (${reason})`}; genq runs \`${CHAT_COMPLETIONS_URL}\` requests`,
      "url",
    );
  }
  if (!isObject(value.body)) {
    return invalid(customId, "missing_required_parameter", "body must be an object", "body");
  }
  const model = value.body.model;
  if (typeof model !== "string" || model.length === 0 || model.length > 200) {
    return invalid(customId, "missing_required_parameter", "body.model must be a model name", "body.model");
  }
  const mapped = toTextInput(value.body);
  if (!mapped.ok) return invalid(customId, "invalid_value", mapped.message, mapped.param);
  return { valid: true, customId, model, input: mapped.input };
}
