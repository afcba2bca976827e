import {
  type Attributes,
  type Context,
  context,
  propagation,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, SimpleSpanProcessor, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";

export { SpanKind } from "@opentelemetry/api";

/** The tracer every genq span comes from. Without {@link startTracing} it records nothing and costs almost nothing. */
export const tracer = trace.getTracer("genq");

/** Options for {@link startTracing}. */
export interface TracingOptions {
  /** `service.name` of the spans: `genq-api`, `genq-worker`. */
  serviceName: string;
  /** An OTLP/HTTP traces endpoint, e.g. `http://collector:4318/v1/traces`. */
  endpoint?: string | undefined;
  /** Export here instead (tests: an `InMemorySpanExporter`), synchronously. */
  exporter?: SpanExporter | undefined;
}

/** Running tracing; flush and stop it on shutdown. */
export interface Tracing {
  shutdown(): Promise<void>;
}

/**
 * Registers the global tracer provider (W3C trace context propagation, async
 * context) exporting to OTLP/HTTP, or to `exporter`. Tracing is off unless a
 * process calls this (the apps do when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
 * `OTEL_EXPORTER_OTLP_ENDPOINT` is set).
 */
export function startTracing(options: TracingOptions): Tracing {
  const exporter = options.exporter ?? new OTLPTraceExporter({ url: options.endpoint });
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ "service.name": options.serviceName }),
    spanProcessors: [
      options.exporter === undefined ? new BatchSpanProcessor(exporter) : new SimpleSpanProcessor(exporter),
    ],
  });
  provider.register();
  return {
    async shutdown() {
      await provider.shutdown();
      trace.disable();
      propagation.disable();
      context.disable();
    },
  };
}

/** The OTLP traces URL the standard OpenTelemetry variables name, or undefined (tracing off). */
export function otlpTracesEndpoint(environment: {
  OTEL_EXPORTER_OTLP_ENDPOINT?: string | undefined;
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?: string | undefined;
}): string | undefined {
  const traces = environment.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (traces !== undefined && traces !== "") return traces;
  const base = environment.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (base === undefined || base === "") return undefined;
  return `${base.replace(/\/+$/, "")}/v1/traces`;
}

/**
 * The active trace context as W3C headers (`traceparent`, `tracestate`), for
 * carrying a trace through a queue in the job's data; undefined when no span is active.
 */
export function injectTraceContext(): Record<string, string> | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return Object.keys(carrier).length === 0 ? undefined : carrier;
}

/** The context a carrier from {@link injectTraceContext} continues (the active one when absent). */
export function extractTraceContext(carrier: Record<string, string> | undefined): Context {
  return carrier === undefined ? context.active() : propagation.extract(context.active(), carrier);
}

/**
 * Runs `work` in a new active span, child of `parent` (default: the active
 * context). The span ends when `work` settles; a throw marks it as an error.
 */
export async function inSpan<T>(
  name: string,
  options: { attributes?: Attributes; kind?: SpanKind; parent?: Context },
  work: (span: Span) => Promise<T>,
): Promise<T> {
  return tracer.startActiveSpan(
    name,
    {
      kind: options.kind ?? SpanKind.INTERNAL,
      ...(options.attributes === undefined ? {} : { attributes: options.attributes }),
    },
    options.parent ?? context.active(),
    async (span) => {
      try {
        return await work(span);
      } catch (error) {
        span.recordException(error instanceof Error ? error : String(error));
        span.setStatus({
          code: SpanStatusCode.ERROR,
          message: error instanceof Error ? error.message : String(error),
        });
        throw error;
      } finally {
        span.end();
      }
    },
  );
}
