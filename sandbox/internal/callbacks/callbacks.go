// Package callbacks sends imports' webhooks: when an import job ends with
// a callback_url, it builds the event (import.complete, import.partial or
// import.failed) and stores it in the outbox in the transaction that ends
// the job, so the job's end and its webhook commit together. It also
// checks callback URLs when an import is made, recognises the sandbox's
// own inbox URLs (delivered in-process, so no network policy applies to
// them), and answers an import's delivery log and redelivery.
//
// It knows nothing of HTTP handlers: package api calls it through an
// interface of its own.
package callbacks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/imports"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/outbox"
	"github.com/accepted-dev/accepted/sandbox/internal/problems"
	"github.com/accepted-dev/accepted/sandbox/internal/safedial"
	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
	"github.com/accepted-dev/accepted/sandbox/internal/webhooks"
)

// Clock is what the service needs of the sandbox clock.
type Clock interface{ Now() time.Time }

// Config configures a Service.
type Config struct {
	Outbox *outbox.Outbox // required
	// PublicURL is where clients reach the sandbox, e.g.
	// https://sandbox.example.com; inbox URLs and the URLs inside webhook
	// payloads start with it.
	PublicURL string
	// CheckCallback checks a callback URL when an import is made
	// (safedial.ValidateURL when nil). Inbox URLs are always allowed.
	CheckCallback func(raw string) error
	// Catalog fills in the problems of failed imports' events.
	Catalog *problems.Catalog // required
	Clock   Clock             // the wall clock when nil
	Logger  *slog.Logger
}

// Service is the webhook side of imports.
type Service struct {
	cfg    Config
	public atomic.Pointer[url.URL]
}

// New checks cfg and returns the service. Add its OnFinish to the job
// engine's.
func New(cfg Config) (*Service, error) {
	if cfg.Outbox == nil || cfg.Catalog == nil {
		return nil, errors.New("callbacks: Config needs the Outbox and the Catalog")
	}
	if cfg.CheckCallback == nil {
		cfg.CheckCallback = safedial.ValidateURL
	}
	if cfg.Clock == nil {
		cfg.Clock = wallClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg}
	if err := s.SetPublicURL(cfg.PublicURL); err != nil {
		return nil, err
	}
	return s, nil
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// SetPublicURL replaces the public URL given in the config, for a server
// that learns its address only once it listens (a port of 0). Inbox URLs
// handed out before keep working only if they name the same host.
func (s *Service) SetPublicURL(raw string) error {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("callbacks: public URL %q must be an absolute http(s) URL", raw)
	}
	s.public.Store(u)
	return nil
}

var inboxIDRE = regexp.MustCompile(`^inb_[a-z2-7]{26}$`)

// InboxURL is the callback URL of an inbox.
func (s *Service) InboxURL(id string) string {
	return s.public.Load().String() + "/v1/sandbox/inboxes/" + id
}

// InboxID reports whether raw is the URL of one of the sandbox's own
// inboxes, and which. Such URLs are delivered in-process, so no network
// policy applies to them; nothing else under the public URL is.
func (s *Service) InboxID(raw string) (string, bool) {
	pub := s.public.Load()
	u, err := url.Parse(raw)
	if err != nil || u.RawQuery != "" || u.Fragment != "" || u.User != nil ||
		!strings.EqualFold(u.Scheme, pub.Scheme) || !sameHost(u, pub) {
		return "", false
	}
	id, ok := strings.CutPrefix(u.EscapedPath(), pub.EscapedPath()+"/v1/sandbox/inboxes/")
	if !ok || !inboxIDRE.MatchString(id) {
		return "", false
	}
	return id, true
}

// sameHost reports whether u names the host of pub: the same host and
// port, where localhost, 127.0.0.1 and ::1 are one host, so an inbox URL
// written with localhost reaches a sandbox listening on 127.0.0.1.
func sameHost(u, pub *url.URL) bool {
	if strings.EqualFold(u.Host, pub.Host) {
		return true
	}
	loopback := func(h string) bool {
		ip, err := netip.ParseAddr(h)
		return strings.EqualFold(h, "localhost") || err == nil && ip.IsLoopback()
	}
	return u.Port() == pub.Port() && u.Port() != "" && loopback(u.Hostname()) && loopback(pub.Hostname())
}

// CheckCallback is the parse-time check of a callback URL (R31); the
// outbox's client checks again when it connects. Inbox URLs pass.
func (s *Service) CheckCallback(raw string) error {
	if _, ok := s.InboxID(raw); ok {
		return nil
	}
	return s.cfg.CheckCallback(raw)
}

// LogName names a callback URL in logs: an inbox's id is its credential,
// so only its first characters are kept; other URLs lose what may carry a
// token (webhooks.RedactURL).
func (s *Service) LogName(u string) string {
	if id, ok := s.InboxID(u); ok {
		return "inbox " + id[:8] + "…"
	}
	return webhooks.RedactURL(u)
}

// OnFinish is the job engine's hook: in the transaction that ends an
// import job with a callback URL, it stores the import's webhook in the
// outbox. The engine stores the terminal state first, so a receiver that
// GETs the import sees it finished. It fails only when the database does.
func (s *Service) OnFinish(ctx context.Context, tx sqldb.Tx, j jobs.Job) error {
	if j.Kind != imports.Kind {
		return nil
	}
	var in imports.Input
	if err := json.Unmarshal(j.Input, &in); err != nil {
		s.cfg.Logger.Error("import input unreadable: no webhook", "job", j.ID, "err", err)
		return nil
	}
	if in.CallbackURL == "" {
		return nil
	}
	at := j.FinishedAt
	if at.IsZero() {
		at = s.cfg.Clock.Now()
	}
	typ, data := s.event(j, in)
	msg := webhooks.NewMessage(typ, at, data)
	return s.cfg.Outbox.Enqueue(ctx, tx, outbox.Webhook{Owner: j.Owner, Network: j.Network, URL: in.CallbackURL, JobID: j.ID, Message: msg})
}

// Enable lets owner's url receive again after a 410 Gone: naming it as the
// callback of a new import is the owner saying so.
func (s *Service) Enable(ctx context.Context, owner, url string) error {
	return s.cfg.Outbox.Enable(ctx, owner, url)
}

// Status is what became of an import's webhook.
type Status struct {
	// Sent: the import's job ended and its message was stored; the rest
	// is empty until then.
	Sent                        bool
	MessageID, EventType, State string // State: outbox.StateSending, or the final outcome
	Attempts                    []webhooks.Attempt
	// Disabled: the callback URL answered 410 Gone, so this owner sends
	// it nothing more until it is enabled again.
	Disabled bool
}

// Deliveries answers the webhook of owner's import job jobID, whose
// callback URL is callbackURL.
func (s *Service) Deliveries(ctx context.Context, owner, jobID, callbackURL string) (Status, error) {
	var st Status
	l, found, err := s.cfg.Outbox.Log(ctx, owner, jobID)
	if err != nil {
		return Status{}, err
	}
	if found {
		st = Status{Sent: true, MessageID: l.MessageID, EventType: l.EventType, State: l.State, Attempts: l.Attempts}
	}
	if callbackURL != "" {
		if _, st.Disabled, err = s.cfg.Outbox.Disabled(ctx, owner, callbackURL); err != nil {
			return Status{}, err
		}
	}
	return st, nil
}

// Redeliver sends the webhook of owner's import job again (see
// outbox.Redeliver): it answers the message id, webhooks.ErrAlreadyPending
// while an attempt is due, outbox.ErrNotSent before the job ended.
func (s *Service) Redeliver(ctx context.Context, owner, jobID string) (string, error) {
	id, err := s.cfg.Outbox.Redeliver(ctx, owner, jobID)
	if err == nil {
		s.cfg.Logger.InfoContext(ctx, "import webhook redelivery", "job", jobID, "msg_id", id)
	}
	return id, err
}
