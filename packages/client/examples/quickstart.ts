// Submit, wait, stream, batch and verify a webhook: GENQ_URL=… GENQ_API_KEY=… node quickstart.ts
import { createServer } from "node:http";
import { GenqClient } from "@genq/client";

const genq = new GenqClient({ baseUrl: process.env.GENQ_URL ?? "", apiKey: process.env.GENQ_API_KEY ?? "" });
const port = Number(process.env.WEBHOOK_PORT ?? 4555);

// A webhook receiver: each delivery is verified (Standard Webhooks) and typed.
const { secret } = await genq.webhooks.secret();
const delivered = new Promise<string>((resolve) => {
  const server = createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk);
    const event = await genq.webhooks.verify(Buffer.concat(chunks), request.headers, secret);
    server.close(() => resolve(`${event.type} ${event.data.id}`));
    response.end();
  }).listen(port, "127.0.0.1");
});

// Submit a job and wait for it (its webhook goes to the receiver).
const job = await genq.jobs.create({
  type: "text",
  input: { prompt: "A haiku about queues" },
  webhook: { url: `http://127.0.0.1:${port}/` },
});
const done = await genq.jobs.wait(job.id);
if (done.type === "text") console.log(`waited: ${done.status}: ${done.result?.text}`);

// Stream a job's text as it is written.
const live = await genq.jobs.create({ type: "text", input: { prompt: "A limerick, live", stream: true } });
for await (const event of genq.events.stream(live.id)) {
  if (event.type === "job.delta") process.stdout.write(event.data.delta);
}

// A batch, and its results in item order.
const batch = await genq.batches.create({ type: "text", items: [{ prompt: "one" }, { prompt: "two" }] });
await genq.batches.wait(batch.id);
for await (const item of genq.batches.results(batch.id))
  console.log(`\nitem ${item.itemIndex}: ${item.status}`);

console.log(`webhook: ${await delivered}`);
