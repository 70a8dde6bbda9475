package app

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/accepted-dev/accepted/sandbox/internal/api"
	"github.com/accepted-dev/accepted/sandbox/internal/inbox"
	"github.com/accepted-dev/accepted/sandbox/internal/safedial"
	"github.com/accepted-dev/accepted/sandbox/internal/secrets"
	"github.com/accepted-dev/accepted/sandbox/internal/webhooks"
)

// webhookParts are the pieces behind imports' webhooks: the dispatcher
// (whose client checks addresses at connect time, R31, and serves the
// built-in inbox in-process), the signing secrets, the inboxes, and the
// API's side of them.
type webhookParts struct {
	dispatcher *webhooks.Dispatcher
	api        *api.Webhooks
	inboxes    *inbox.Store
	secrets    *secrets.Store
}

// publicURL is cfg.PublicURL, or http://<addr> with a wildcard host
// replaced by localhost.
func publicURL(cfg Config) string {
	if cfg.PublicURL != "" {
		return strings.TrimRight(cfg.PublicURL, "/")
	}
	return listenURL(cfg.Addr, cfg.Addr)
}

// listenURL is http://host:port for a server asked to listen on addr that
// listens on actual: the host of addr (localhost for a wildcard) and the
// port of actual, which differs when addr asked for port 0.
func listenURL(addr, actual string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if _, p, err := net.SplitHostPort(actual); err == nil {
		port = p
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// newWebhooks builds the webhook parts; handler is the server's whole HTTP
// surface, read when an inbox delivery is made (after New has set it).
func newWebhooks(cfg Config, d Deps, s *Server, handler func() http.Handler) (*webhookParts, error) {
	log := d.Logger.With("component", "webhooks")
	p := &webhookParts{secrets: secrets.New(d.Clock, secrets.DefaultGrace, cfg.MaxKeys)}
	p.inboxes = inbox.New(inbox.Config{Clock: d.Clock, Secrets: func(owner string) ([]string, error) {
		set, err := p.secrets.Get(owner)
		return set.Active(), err
	}})

	policy := safedial.Policy{}
	if cfg.AllowPrivateCallbacks {
		policy.Allow = func(netip.Addr) bool { return true }
	}
	client := policy.Client()
	client.Transport = &inboxTransport{parts: p, handler: handler, next: client.Transport}
	attempts := api.NewAttemptLog(100, 10_000)
	var err error
	p.dispatcher, err = webhooks.NewDispatcher(webhooks.Config{
		Client: client, Log: attempts, Logger: log, Clock: d.Clock, TimeScale: cfg.TimeScale,
		Workers: 32, MaxPending: 10_000, UserAgent: "Accepted-Sandbox-Webhooks/1 (+https://www.standardwebhooks.com)",
	})
	if err != nil {
		return nil, fmt.Errorf("building the webhook dispatcher: %w", err)
	}
	check := policy.ValidateURL
	if d.CheckCallback != nil {
		check = d.CheckCallback
	}
	p.api, err = api.NewWebhooks(api.WebhooksConfig{
		Dispatcher: p.dispatcher, Attempts: attempts, Secrets: p.secrets, Inboxes: p.inboxes,
		Watch: s.engine.Watch, PublicURL: publicURL(cfg), CheckCallback: check,
		Catalog: s.catalog, Clock: d.Clock, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// close stops following jobs, then the dispatcher; messages still waiting
// for a retry are logged (they live in memory and are lost).
func (p *webhookParts) close(ctx context.Context, log *slog.Logger) error {
	err := p.api.Close(ctx)
	pending, derr := p.dispatcher.Close(ctx)
	for _, m := range pending {
		log.Warn("webhook still pending at shutdown: it lived in memory and is not sent", "msg_id", m.Message.ID, "type", m.Message.Type,
			"endpoint", cmp.Or(m.Endpoint.Name, webhooks.RedactURL(m.Endpoint.URL)), "attempts", m.Attempts,
			"next_attempt_at", m.NextAttemptAt, "last_error", m.LastError)
	}
	if errors.Is(derr, webhooks.ErrClosed) {
		derr = nil
	}
	return errors.Join(err, derr)
}

// inboxTransport delivers to the sandbox's own inbox URLs in-process,
// through the server's handler: they are real HTTP requests with real
// headers, but they do not depend on the network, the listener's address or
// the allow-list, so the built-in inbox always works (R31). Every other URL
// goes to next, the safedial transport.
type inboxTransport struct {
	parts   *webhookParts
	handler func() http.Handler
	next    http.RoundTripper
}

func (t *inboxTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if _, ok := t.parts.api.InboxID(req.URL.String()); !ok {
		return t.next.RoundTrip(req)
	}
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(io.LimitReader(req.Body, inbox.MaxBody+1))
		_ = req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("reading the webhook body: %w", err)
		}
		body = b
	}
	in := req.Clone(req.Context())
	// As a server would see it: canonical header names, a path-only URL.
	in.Header = make(http.Header, len(req.Header)+1)
	for k, vs := range req.Header {
		for _, v := range vs {
			in.Header.Add(k, v)
		}
	}
	in.Header.Set("Content-Length", strconv.Itoa(len(body)))
	in.URL = &url.URL{Path: req.URL.Path, RawPath: req.URL.RawPath}
	in.RequestURI = req.URL.RequestURI()
	in.Host = req.URL.Host
	in.RemoteAddr = "in-process:0"
	in.Body = io.NopCloser(bytes.NewReader(body))
	in.ContentLength = int64(len(body))
	rec := &recorder{header: http.Header{}}
	t.handler().ServeHTTP(rec, in)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return &http.Response{
		Status: fmt.Sprintf("%d %s", rec.status, http.StatusText(rec.status)), StatusCode: rec.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: rec.header, Body: io.NopCloser(bytes.NewReader(rec.body.Bytes())), ContentLength: int64(rec.body.Len()),
		Request: req,
	}, nil
}

// recorder is the ResponseWriter of an in-process delivery.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	if r.body.Len() < 64<<10 {
		r.body.Write(b[:min(len(b), 64<<10-r.body.Len())])
	}
	return len(b), nil
}
