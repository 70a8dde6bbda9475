// Package telemetry is what an operator sees of a running sandbox: metrics
// in the Prometheus text format, on a registry the caller owns, and traces
// with OpenTelemetry, from the POST that accepted a job through the River
// runs that work it to the webhook that reports its end. Nothing here is
// global: the registry, the tracer provider and the propagator are passed to
// whoever needs them.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// ServiceName is the service.name of the sandbox's spans unless
// OTEL_SERVICE_NAME (or OTEL_RESOURCE_ATTRIBUTES) says otherwise.
const ServiceName = "accepted-sandbox"

// TraceIDHeader is the response header that names the trace of every
// request, so a support request can quote it.
const TraceIDHeader = "Trace-Id"

// Tracing is how the sandbox traces: a provider, the propagator that reads
// and writes traceparent, and what to call at exit so that buffered spans
// are sent.
type Tracing struct {
	Provider   trace.TracerProvider
	Propagator propagation.TextMapPropagator
	// Exporter is where spans go: "none", "otlp" or "console".
	Exporter string
	Shutdown func(context.Context) error
}

// Propagator is W3C Trace Context (traceparent, tracestate) and Baggage.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// Untraced is tracing with no exporter: spans are never recorded (the
// sampler drops them all), but every span still gets its ids, and a
// traceparent that came in is continued, so each response can name its
// trace and each webhook carry one.
func Untraced() *Tracing {
	return &Tracing{
		Provider:   sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample())),
		Propagator: Propagator(),
		Exporter:   "none",
		Shutdown:   func(context.Context) error { return nil },
	}
}

// FromEnv builds tracing from the standard OpenTelemetry variables, read
// with getenv:
//
//   - OTEL_TRACES_EXPORTER: otlp (OTLP over HTTP, otlptracehttp, which
//     reads OTEL_EXPORTER_OTLP_ENDPOINT, _HEADERS, _TIMEOUT … itself),
//     console or stdout (spans as JSON on console, for local debugging), or
//     none. Unset: otlp when OTEL_EXPORTER_OTLP_ENDPOINT or
//     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, else none (Untraced).
//   - OTEL_SDK_DISABLED=true: none.
//   - OTEL_TRACES_SAMPLER and _ARG, OTEL_SERVICE_NAME,
//     OTEL_RESOURCE_ATTRIBUTES: read by the SDK.
func FromEnv(ctx context.Context, getenv func(string) string, console io.Writer, version string) (*Tracing, error) {
	exporter := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")))
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		exporter = "none"
	}
	if exporter == "" {
		exporter = "none"
		if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" {
			exporter = "otlp"
		}
	}
	var exp sdktrace.SpanExporter
	var err error
	switch exporter {
	case "none":
		return Untraced(), nil
	case "otlp":
		proto := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
		if proto == "" {
			proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
		}
		if proto != "" && proto != "http/protobuf" {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q: the sandbox sends OTLP over HTTP only (http/protobuf); point it at the collector's HTTP port (4318)", proto)
		}
		exp, err = otlptracehttp.New(ctx)
	case "console", "stdout":
		exporter = "console"
		exp, err = stdouttrace.New(stdouttrace.WithWriter(console))
	default:
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER %q: use otlp, console (or stdout), or none", exporter)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: the %s exporter: %w", exporter, err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", ServiceName), attribute.String("service.version", version)),
		resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing: the resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Tracing{Provider: tp, Propagator: Propagator(), Exporter: exporter, Shutdown: tp.Shutdown}, nil
}

// TraceParent is the traceparent of the span in ctx ("" without one), to
// store with what the span started so that later work joins its trace.
func TraceParent(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"]
}

// TraceID is the trace id of the span in ctx, 32 hex digits ("" without one).
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.HasTraceID() {
		return ""
	}
	return sc.TraceID().String()
}

// TraceIDOf is the trace id inside a traceparent ("" when it is not one).
func TraceIDOf(traceparent string) string {
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": traceparent}))
	if !sc.HasTraceID() {
		return ""
	}
	return sc.TraceID().String()
}

// Server wraps the public handler in the request's span: it continues a
// traceparent sent, or starts a trace, and names the span by the route the
// mux matched (name answers it once the request is answered; only a
// recorded span keeps its name). Spans that
// are recorded go through otelhttp, which gives them the HTTP semantic
// conventions' attributes. With no exporter nothing is recorded, so the
// span needs only its ids: it is started directly, without the attributes
// and metrics otelhttp would compute for nobody (about a seventh of a
// poll's time, measured with the wire benchmark's profile).
func (t *Tracing) Server(next http.Handler, name func(*http.Request) string) http.Handler {
	if t.Exporter != "none" {
		return otelhttp.NewHandler(next, "HTTP",
			otelhttp.WithTracerProvider(t.Provider), otelhttp.WithPropagators(t.Propagator),
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return name(r) }))
	}
	tracer := t.Provider.Tracer(instrumentation)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := t.Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tracer.Start(ctx, "HTTP", trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// instrumentation names the tracer of the sandbox's own spans.
const instrumentation = "github.com/accepted-dev/accepted/sandbox/internal/telemetry"
