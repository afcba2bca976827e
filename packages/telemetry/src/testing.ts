/** Collects finished spans in memory, for tests: `startTracing({ serviceName, exporter })`. */
export { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
