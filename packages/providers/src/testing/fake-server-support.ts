import type { IncomingMessage, Server } from "node:http";

/** One request as a fake provider server records it. */
export interface RecordedRequest {
  method: string;
  path: string;
  /** The query string as a record. */
  query: Record<string, string>;
  /** Lower-case header names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /**
   * The parsed JSON body; for `multipart/form-data` a record of its fields (text as
   * strings, files as {@link RecordedFile}); the raw text otherwise; undefined when empty.
   */
  body: unknown;
  /** When the request arrived (epoch ms). */
  receivedAt: number;
}

/** A file part of a recorded multipart request. */
export interface RecordedFile {
  filename: string;
  contentType: string;
  bytes: Uint8Array;
}

/** Reads and records an incoming request the way every fake provider server does. */
export async function readFakeRequest(incoming: IncomingMessage): Promise<RecordedRequest> {
  const receivedAt = Date.now();
  const chunks: Buffer[] = [];
  for await (const chunk of incoming) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks);
  const text = raw.toString("utf8");
  const contentType = incoming.headers["content-type"] ?? "";
  let body: unknown;
  if (contentType.startsWith("multipart/form-data")) {
    body = await readMultipart(raw, contentType);
  } else if (text !== "") {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(incoming.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  const url = new URL(incoming.url ?? "/", "http://localhost");
  return {
    method: incoming.method ?? "GET",
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    headers,
    body,
    receivedAt,
  };
}

/** The fields of a multipart body; a repeated field keeps its last value. */
async function readMultipart(raw: Buffer, contentType: string): Promise<Record<string, unknown>> {
  const form = await new Response(raw, { headers: { "content-type": contentType } }).formData();
  const fields: Record<string, unknown> = {};
  for (const [field, value] of form.entries()) {
    fields[field] =
      typeof value === "string"
        ? value
        : ({
            filename: value.name,
            contentType: value.type,
            bytes: new Uint8Array(await value.arrayBuffer()),
          } satisfies RecordedFile);
  }
  return fields;
}

/** Resolves after `milliseconds`, or as soon as the client goes away. */
export function waitUnlessClosed(incoming: IncomingMessage, milliseconds: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, milliseconds);
    function done() {
      clearTimeout(timer);
      incoming.socket.off("close", done);
      resolve();
    }
    incoming.socket.once("close", done);
  });
}

/** Closes a fake server at once; keep-alive sockets would otherwise hold it open until they time out. */
export function closeFakeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.closeAllConnections();
    server.close((error) => (error ? reject(error) : resolve()));
  });
}
