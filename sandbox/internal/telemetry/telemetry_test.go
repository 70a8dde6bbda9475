package telemetry

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
)

func TestTracingFromEnv(t *testing.T) {
	for _, tc := range []struct {
		env      map[string]string
		exporter string
		err      string
	}{
		{nil, "none", ""},
		{map[string]string{"OTEL_TRACES_EXPORTER": "console"}, "console", ""},
		{map[string]string{"OTEL_TRACES_EXPORTER": "stdout"}, "console", ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, "otlp", ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}, "none", ""},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "", "http/protobuf"},
		{map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, "", "use otlp, console"},
	} {
		tr, err := FromEnv(context.Background(), func(k string) string { return tc.env[k] }, &bytes.Buffer{}, "test")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: error %v, want one naming %q", tc.env, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v", tc.env, err)
		}
		if tr.Exporter != tc.exporter {
			t.Errorf("%v: exporter %s, want %s", tc.env, tr.Exporter, tc.exporter)
		}
		_ = tr.Shutdown(context.Background())
	}
}

func TestUntracedStillMakesAndContinuesIDs(t *testing.T) {
	tr := Untraced()
	ctx, span := tr.Provider.Tracer("t").Start(context.Background(), "root")
	defer span.End()
	if span.IsRecording() || !span.SpanContext().IsValid() {
		t.Fatalf("an untraced span: recording %v, valid ids %v; want ids and no recording", span.IsRecording(), span.SpanContext().IsValid())
	}
	tp := TraceParent(ctx)
	if TraceIDOf(tp) != TraceID(ctx) || len(TraceID(ctx)) != 32 {
		t.Errorf("traceparent %q and trace id %q disagree", tp, TraceID(ctx))
	}
	in := Propagator().Extract(context.Background(), propagation.MapCarrier{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
	ctx, child := tr.Provider.Tracer("t").Start(in, "child")
	defer child.End()
	if TraceID(ctx) != "0af7651916cd43dd8448eb211c80319c" {
		t.Errorf("a traceparent that came in was not continued: %s", TraceID(ctx))
	}
	if TraceIDOf("garbage") != "" || TraceParent(context.Background()) != "" {
		t.Error("no trace should read as none")
	}
}

// gathered answers, for the metric family name, how many series it has
// and the value of its first (a gauge's, or a histogram's count).
func gathered(t *testing.T, reg *prometheus.Registry, name string) (series int, first float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) == 0 {
			continue
		}
		m := mf.GetMetric()[0]
		return len(mf.GetMetric()), m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
	}
	return 0, 0
}

func TestMetricsObserveRoutesAndStreams(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	streams := func() float64 { _, v := gathered(t, reg, "accepted_event_streams_open"); return v }
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		if n := streams(); n != 0 {
			t.Errorf("streams open before the stream: %v", n)
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.(http.Flusher).Flush()
		if n := streams(); n != 1 {
			t.Errorf("streams open during the stream: %v", n)
		}
	})
	srv := httptest.NewServer(Observe(m, mux))
	defer srv.Close()
	for _, p := range []string{"/v1/jobs/job_1", "/v1/jobs/job_2", "/v1/nope", "/index.html"} {
		res, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body) // the end of the body comes after the handler returned
		_ = res.Body.Close()
	}
	if n, _ := gathered(t, reg, "accepted_http_request_duration_seconds"); n != 3 {
		t.Errorf("%d request series, want 3 (the route pattern, unmatched, site)", n)
	}
	if got := streams(); got != 0 {
		t.Errorf("streams open after they ended: %v", got)
	}
}
