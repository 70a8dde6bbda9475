package telemetry

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
)

// Depths are the gauges read from the database when Prometheus scrapes:
// they count what every replica shares, so any replica answers them.
type Depths struct {
	// JobsQueued and JobsRunning are the jobs accepted and not started,
	// and started and not finished.
	JobsQueued, JobsRunning int
	// WebhooksPending are webhook messages still being delivered (an
	// attempt due, under way, or waiting for its retry): the outbox's depth.
	WebhooksPending int
	// WebhooksDead are messages whose delivery gave up (failed after the
	// last retry, or to an endpoint disabled by 410 Gone), kept for the
	// retention period: the dead letters.
	WebhooksDead int
}

// DepthsFunc reads Depths; it must answer within the context's deadline.
type DepthsFunc func(ctx context.Context) (Depths, error)

// Metrics are the sandbox's Prometheus metrics, on a registry of its own.
type Metrics struct {
	reg *prometheus.Registry

	accepted    *prometheus.CounterVec
	finished    *prometheus.CounterVec
	stalled     *prometheus.CounterVec
	attempts    *prometheus.CounterVec
	refused     *prometheus.CounterVec
	streams     prometheus.Gauge
	requests    *prometheus.HistogramVec
	depths      *depthCollector
	scrapeLimit time.Duration
}

// ScrapeTimeout bounds the database queries of one scrape.
const ScrapeTimeout = 2 * time.Second

// NewMetrics registers the sandbox's metrics on reg, with the Go runtime's
// and the process's. The database gauges come once SetDepths says from
// where.
func NewMetrics(reg *prometheus.Registry) *Metrics {
	m := &Metrics{
		reg: reg,
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "accepted_jobs_accepted_total", Help: "Jobs accepted (answered 202) by this replica, by kind.",
		}, []string{"kind"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "accepted_jobs_finished_total", Help: "Jobs that reached a terminal status on this replica, by kind and status (succeeded, failed, canceled).",
		}, []string{"kind", "status"}),
		stalled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "accepted_jobs_stalled_total", Help: "Jobs failed by the dead-man's switch (job_stalled) on this replica, by kind: their worker went silent.",
		}, []string{"kind"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "accepted_webhook_attempts_total", Help: "Webhook delivery attempts made by this replica, by outcome (delivered, retrying, failed, disabled).",
		}, []string{"outcome"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "accepted_rate_limited_total", Help: "Requests refused with 429 by a rate-limit policy on this replica, by policy (poll, start, keys, inbox, inbox-network, streams).",
		}, []string{"policy"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "accepted_event_streams_open", Help: "Event streams (text/event-stream answers) open on this replica now.",
		}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "accepted_http_request_duration_seconds",
			Help: "Time to answer a request, by route (the pattern it matched, such as \"GET /v1/jobs/{id}\"; site or unmatched otherwise) and status code. An event stream counts until it ends.",
			// From a cached poll (about 100 µs) to a long event stream.
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route", "code"}),
		depths:      &depthCollector{},
		scrapeLimit: ScrapeTimeout,
	}
	m.depths.timeout = m.scrapeLimit
	reg.MustRegister(m.accepted, m.finished, m.stalled, m.attempts, m.refused, m.streams, m.requests, m.depths,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// SetDepths says where the database gauges come from.
func (m *Metrics) SetDepths(f DepthsFunc) { m.depths.read = f }

// Handler serves the registry in the Prometheus text format (or
// OpenMetrics, when the scraper asks).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{EnableOpenMetrics: true, Timeout: 2 * m.scrapeLimit})
}

// JobAccepted counts a job accepted.
func (m *Metrics) JobAccepted(kind string) { m.accepted.WithLabelValues(kind).Inc() }

// JobFinished counts a job that reached a terminal status; stalled says
// the dead-man's switch ended it.
func (m *Metrics) JobFinished(kind, status string, stalled bool) {
	m.finished.WithLabelValues(kind, status).Inc()
	if stalled {
		m.stalled.WithLabelValues(kind).Inc()
	}
}

// WebhookAttempt counts a delivery attempt by its outcome.
func (m *Metrics) WebhookAttempt(outcome string) { m.attempts.WithLabelValues(outcome).Inc() }

// RateLimited counts a request refused by policy.
func (m *Metrics) RateLimited(policy string) { m.refused.WithLabelValues(policy).Inc() }

// depthCollector reads Depths at scrape time, within a timeout: a database
// that does not answer makes accepted_database_up 0 rather than a hung
// scrape.
type depthCollector struct {
	read    DepthsFunc
	timeout time.Duration
}

var (
	descQueued  = prometheus.NewDesc("accepted_jobs_queued", "Jobs accepted and not yet started, on every replica (read from the database at scrape time).", nil, nil)
	descRunning = prometheus.NewDesc("accepted_jobs_running", "Jobs started and not yet finished, on every replica (read from the database at scrape time).", nil, nil)
	descPending = prometheus.NewDesc("accepted_webhook_outbox_depth", "Webhook messages still being delivered (due, under way or waiting for a retry), on every replica.", nil, nil)
	descDead    = prometheus.NewDesc("accepted_webhook_dead_letters", "Webhook messages whose delivery gave up (failed after the last retry, or disabled by 410 Gone), kept for the retention period.", nil, nil)
	descUp      = prometheus.NewDesc("accepted_database_up", "1 when the database answered the scrape's queries in time, 0 when it did not (the gauges above are then missing).", nil, nil)
)

func (c *depthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descQueued
	ch <- descRunning
	ch <- descPending
	ch <- descDead
	ch <- descUp
}

func (c *depthCollector) Collect(ch chan<- prometheus.Metric) {
	if c.read == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	d, err := c.read(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(d.JobsQueued))
	ch <- prometheus.MustNewConstMetric(descRunning, prometheus.GaugeValue, float64(d.JobsRunning))
	ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(d.WebhooksPending))
	ch <- prometheus.MustNewConstMetric(descDead, prometheus.GaugeValue, float64(d.WebhooksDead))
}

// Observe wraps the whole public handler: it names the request's trace in
// the Trace-Id header (before anything is written, so every answer has
// it), times the request by the route it matched, and counts the event
// streams open. It must run inside the tracing handler (otelhttp), whose
// span it reads, and outside the mux, whose pattern it reads once the
// request is answered (the mux sets it on the request it was given).
// metrics may be nil: only the header is set.
func Observe(m *Metrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sc := trace.SpanContextFromContext(r.Context()); sc.HasTraceID() {
			w.Header().Set(TraceIDHeader, sc.TraceID().String())
		}
		if m == nil {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		ow := &observedWriter{ResponseWriter: w, m: m}
		next.ServeHTTP(ow, r)
		if ow.stream {
			m.streams.Dec()
		}
		route := r.Pattern
		if route == "" {
			route = "unmatched"
			if !isAPIPath(r.URL.Path) {
				route = "site"
			}
		}
		status := ow.status
		if status == 0 {
			status = http.StatusOK
		}
		m.requests.WithLabelValues(route, strconv.Itoa(status)).Observe(time.Since(start).Seconds())
	})
}

func isAPIPath(p string) bool {
	return strings.HasPrefix(p, "/v1/") || p == "/healthz" || p == "/readyz" || strings.HasPrefix(p, "/openapi")
}

// observedWriter notes the status and whether the answer is an event
// stream. It passes Flush on, which event streams need, and Unwrap, for
// http.ResponseController.
type observedWriter struct {
	http.ResponseWriter
	m      *Metrics
	status int
	stream bool
}

func (w *observedWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		if strings.HasPrefix(w.Header().Get("Content-Type"), "text/event-stream") {
			w.stream = true
			w.m.streams.Inc()
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *observedWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *observedWriter) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *observedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
