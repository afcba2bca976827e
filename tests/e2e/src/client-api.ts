import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Harness, type HarnessOptions } from "./harness.ts";

/**
 * A harness whose API listens on a real port: `@genq/client` and the `genq` CLI speak
 * HTTP with fetch, so they need a socket, not `inject`.
 */
export async function startListeningHarness(
  options: HarnessOptions = {},
): Promise<{ harness: Harness; url: string }> {
  const harness = await new Harness(options).start();
  await harness.app.listen({ port: 0, host: "127.0.0.1" });
  const { port } = harness.app.server.address() as AddressInfo;
  return { harness, url: `http://127.0.0.1:${port}` };
}

/** One POST a webhook receiver got. */
export interface ReceivedWebhook {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A webhook receiver on 127.0.0.1 that answers 200 and hands each delivery to whoever waits for it. */
export class WebhookReceiver {
  readonly received: ReceivedWebhook[] = [];
  #server: Server | undefined;
  #waiters: Array<{ match: (entry: ReceivedWebhook) => boolean; resolve: (entry: ReceivedWebhook) => void }> =
    [];

  async start(): Promise<this> {
    this.#server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        const entry = { headers: request.headers, body: Buffer.concat(chunks).toString() };
        this.received.push(entry);
        response.writeHead(200).end("ok");
        for (const waiter of [...this.#waiters]) {
          if (!waiter.match(entry)) continue;
          this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
          waiter.resolve(entry);
        }
      });
    });
    await new Promise<void>((resolve) => this.#server?.listen(0, "127.0.0.1", resolve));
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server!.address() as AddressInfo).port}/hook`;
  }

  /** The first delivery (already received or coming) whose body contains `text`. */
  next(text: string): Promise<ReceivedWebhook> {
    const match = (entry: ReceivedWebhook) => entry.body.includes(text);
    const seen = this.received.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve) => this.#waiters.push({ match, resolve }));
  }

  async close(): Promise<void> {
    await new Promise((resolve) => this.#server?.close(resolve));
  }
}
