package webhooks

import (
	"bytes"
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/safedial"
)

// Dispatcher errors. Enqueue and Redeliver wrap them; the API turns them
// into problems.
var (
	ErrQueueFull        = errors.New("webhook queue full")
	ErrClosed           = errors.New("webhook dispatcher closed")
	ErrEndpointDisabled = errors.New("webhook endpoint disabled")
	ErrAlreadyPending   = errors.New("webhook message already pending for this endpoint")
	ErrBadEndpoint      = errors.New("bad webhook endpoint")
)

// Outcomes of an Attempt.
const (
	OutcomeDelivered = "delivered" // 2xx; final
	OutcomeRetrying  = "retrying"  // failed; NextAttemptAt says when the next try is
	OutcomeFailed    = "failed"    // failed and no attempt is left; final
	OutcomeDisabled  = "disabled"  // 410 Gone (or the endpoint was disabled meanwhile); final
)

// StandardSchedule returns the Standard Webhooks retry schedule: the delay
// before each attempt, the first being immediate. Ten attempts over about
// 76 hours.
func StandardSchedule() []time.Duration {
	return []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute,
		2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour}
}

// Clock is the part of the sandbox clock the Dispatcher needs; clock.Real()
// and clock.NewFake satisfy it. It schedules retries and stamps attempts.
// Per-attempt timeouts and latencies are real I/O durations and use package
// time directly.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// Log records delivery attempts, keyed by Endpoint.Key, for the delivery log
// a developer reads when their webhooks "never arrived".
type Log interface {
	Record(ctx context.Context, endpointKey string, a Attempt) error
}

// Attempt is one try at delivering a message, or the decision not to try
// (an endpoint disabled meanwhile).
type Attempt struct {
	MessageID     string        `json:"message_id"`
	EventType     string        `json:"event_type"`
	Number        int           `json:"number"` // 1-based; restarts at 1 for a manual redelivery
	At            time.Time     `json:"at"`
	URL           string        `json:"url"`
	StatusCode    int           `json:"status_code,omitzero"` // 0 when no response arrived
	Latency       time.Duration `json:"latency"`
	Error         string        `json:"error,omitzero"`           // why it failed, for a person
	NextAttemptAt time.Time     `json:"next_attempt_at,omitzero"` // zero when Final
	Final         bool          `json:"final"`
	Outcome       string        `json:"outcome"` // Outcome… constants
	Manual        bool          `json:"manual,omitzero"`
}

// Endpoint is where a message goes and what it is signed with.
type Endpoint struct {
	URL string
	// Secrets are the active signing secrets, current first; see Signer.
	Secrets []string
	// Key names the endpoint in the Log and for disabling after 410 Gone
	// (an API key id, an inbox id). The URL when empty.
	Key string
	// Name is how logs name the endpoint, so it must hold no secret: a
	// URL's query string or user info often carries a token. When empty,
	// logs use the URL with its user info, query and fragment removed.
	Name string
}

func (e Endpoint) key() string { return cmp.Or(e.Key, e.URL) }

func (e Endpoint) name() string { return cmp.Or(e.Name, RedactURL(e.URL)) }

// RedactURL is raw without what may be a credential: user info, query and
// fragment are replaced by "redacted". It is for logs; a URL that does not parse
// becomes "(unparsable URL)".
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User("redacted")
	}
	if u.RawQuery != "" || u.ForceQuery {
		u.RawQuery, u.ForceQuery = "redacted", false
	}
	if u.Fragment != "" {
		u.Fragment, u.RawFragment = "redacted", ""
	}
	return u.String()
}

// Pending is a message that was accepted and not yet delivered, failed or
// disabled when the Dispatcher closed, for the caller to persist or log.
type Pending struct {
	Endpoint      Endpoint
	Message       Message
	Payload       []byte // the exact bytes that were signed and sent
	Attempts      int    // attempts made so far
	NextAttemptAt time.Time
	LastError     string
}

// Config configures a Dispatcher. Client, Log and Logger are required.
type Config struct {
	// Client sends the requests. Build it with safedial so addresses are
	// checked at connect time. The Dispatcher uses a copy whose redirects
	// are never followed, whatever Client.CheckRedirect says.
	Client *http.Client
	Log    Log
	Logger *slog.Logger

	Clock Clock // clock.Real() semantics when nil
	// TimeScale multiplies every delay: the schedule, Retry-After and the
	// attempt timeout. 1 (the default when 0) is real time; 0.001 turns
	// the 76-hour schedule into 76 seconds.
	TimeScale float64
	// Schedule is the delay before each attempt; StandardSchedule when nil.
	Schedule []time.Duration
	// JitterFraction spreads each retry delay uniformly within ±fraction:
	// 0.1 when 0, none when negative.
	JitterFraction float64
	// Rand is the jitter source; seed it in tests. A randomly seeded PCG
	// when nil. The Dispatcher serialises its use.
	Rand *rand.Rand
	// MaxRetryAfter caps a receiver's Retry-After (before scaling), so a
	// receiver cannot park a message forever. 24 h when 0.
	MaxRetryAfter time.Duration
	// AttemptTimeout bounds one attempt, from dialling to the response
	// headers; it is scaled too but never below MinAttemptTimeout.
	// 10 s and 250 ms when 0.
	AttemptTimeout, MinAttemptTimeout time.Duration
	// Workers bounds concurrent requests (8 when 0); MaxPending bounds the
	// messages accepted and not yet final, including those waiting hours
	// for a retry (1000 when 0). Enqueue refuses with ErrQueueFull beyond.
	Workers, MaxPending int
	// CheckURL validates an endpoint URL at Enqueue, e.g.
	// safedial.Policy.ValidateURL. Only the form (absolute http or https)
	// is checked when nil; addresses are checked when connecting anyway.
	CheckURL  func(raw string) error
	UserAgent string // "Accepted-Webhooks/1" when empty
}

// Dispatcher delivers messages in the background, retrying on failure. Its
// methods are safe for concurrent use.
//
// What an answer means:
//   - 2xx: delivered.
//   - 410 Gone: the endpoint is disabled: no further attempts for this
//     message or any other to the same Endpoint.Key until Enable.
//   - 3xx: a failure, never followed (the Location goes in the error).
//   - 429, 5xx, timeouts, connection errors, and every other 4xx: retried on
//     the schedule. Standard Webhooks treats any non-2xx as a failed attempt
//     and only 410 as a reason to stop; a 400 or 401 is usually a receiver's
//     bug or a secret mid-rotation, which a later attempt may get past.
//   - An address refused by safedial: failed at once; retrying cannot fix a
//     callback that points into a private network.
//
// A Retry-After (seconds or HTTP-date) longer than the next scheduled delay
// replaces it, capped by MaxRetryAfter.
type Dispatcher struct {
	cfg    Config
	client http.Client
	log    *slog.Logger

	randMu sync.Mutex

	sem chan struct{} // worker slots
	wg  sync.WaitGroup
	// waitCtx ends when Close starts: nothing new is sent, and deliveries
	// waiting for a retry stop waiting and stay pending. sendCtx ends when
	// Close gives up waiting for attempts in flight.
	waitCtx, sendCtx       context.Context
	cancelWait, cancelSend context.CancelFunc

	mu       sync.Mutex
	closed   bool
	pending  map[pendingKey]*delivery
	disabled map[string]time.Time
}

type pendingKey struct{ endpoint, msgID string }

type delivery struct {
	ep      Endpoint
	key     string
	name    string // for logs
	msg     Message
	payload []byte
	signer  *Signer
	manual  bool

	// guarded by Dispatcher.mu
	attempts int
	nextAt   time.Time
	lastErr  string
}

// NewDispatcher returns a Dispatcher that runs until Close.
func NewDispatcher(cfg Config) (*Dispatcher, error) {
	if cfg.Client == nil || cfg.Log == nil || cfg.Logger == nil {
		return nil, errors.New("webhooks: NewDispatcher needs a Client, a Log and a Logger")
	}
	if cfg.TimeScale < 0 {
		return nil, fmt.Errorf("webhooks: negative time scale %v", cfg.TimeScale)
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	cfg.TimeScale = cmp.Or(cfg.TimeScale, 1)
	if cfg.Schedule == nil {
		cfg.Schedule = StandardSchedule()
	}
	if len(cfg.Schedule) == 0 {
		return nil, errors.New("webhooks: empty retry schedule")
	}
	cfg.Schedule = slices.Clone(cfg.Schedule)
	switch {
	case cfg.JitterFraction == 0:
		cfg.JitterFraction = 0.1
	case cfg.JitterFraction < 0:
		cfg.JitterFraction = 0
	case cfg.JitterFraction >= 1:
		return nil, fmt.Errorf("webhooks: jitter fraction %v must be below 1", cfg.JitterFraction)
	}
	if cfg.Rand == nil {
		var seed [16]byte
		_, _ = crand.Read(seed[:])
		cfg.Rand = rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))
	}
	cfg.MaxRetryAfter = cmp.Or(cfg.MaxRetryAfter, 24*time.Hour)
	cfg.AttemptTimeout = cmp.Or(cfg.AttemptTimeout, 10*time.Second)
	cfg.MinAttemptTimeout = cmp.Or(cfg.MinAttemptTimeout, 250*time.Millisecond)
	cfg.Workers = cmp.Or(cfg.Workers, 8)
	cfg.MaxPending = cmp.Or(cfg.MaxPending, 1000)
	if cfg.Workers < 0 || cfg.MaxPending < 0 {
		return nil, errors.New("webhooks: negative Workers or MaxPending")
	}
	if cfg.CheckURL == nil {
		cfg.CheckURL = checkURLForm
	}
	cfg.UserAgent = cmp.Or(cfg.UserAgent, "Accepted-Webhooks/1")

	d := &Dispatcher{
		cfg:      cfg,
		client:   *cfg.Client,
		log:      cfg.Logger,
		sem:      make(chan struct{}, cfg.Workers),
		pending:  make(map[pendingKey]*delivery),
		disabled: make(map[string]time.Time),
	}
	d.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	// Deliveries outlive the requests that enqueue them: these contexts
	// come from Background and end only through Close.
	d.waitCtx, d.cancelWait = context.WithCancel(context.Background())
	d.sendCtx, d.cancelSend = context.WithCancel(context.Background())
	return d, nil
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

func checkURLForm(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	return nil
}

// Enqueue accepts msg for delivery to ep and returns at once; delivery
// happens in the background, on the Dispatcher's own context, not ctx. It
// refuses with ErrQueueFull when MaxPending messages are pending, with
// ErrEndpointDisabled after the endpoint answered 410 Gone, and with
// ErrAlreadyPending when the same message id is pending for ep.
func (d *Dispatcher) Enqueue(ctx context.Context, ep Endpoint, msg Message) error {
	return d.enqueue(ctx, ep, msg, false)
}

// Redeliver sends msg again, with the same id, to ep, as a manual
// redelivery: one attempt, recorded with Manual set and Number 1, and no
// automatic retries (the developer asked for it and watches the result; a
// fresh 76-hour schedule per click would multiply traffic). It refuses a
// disabled endpoint until Enable is called.
func (d *Dispatcher) Redeliver(ctx context.Context, ep Endpoint, msg Message) error {
	return d.enqueue(ctx, ep, msg, true)
}

// Disabled reports whether key's endpoint answered 410 Gone, and when.
func (d *Dispatcher) Disabled(key string) (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	at, ok := d.disabled[key]
	return at, ok
}

// Enable lets deliveries to key's endpoint resume after a 410 Gone.
func (d *Dispatcher) Enable(key string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.disabled, key)
}

func (d *Dispatcher) enqueue(ctx context.Context, ep Endpoint, msg Message, manual bool) error {
	if err := d.cfg.CheckURL(ep.URL); err != nil {
		return fmt.Errorf("%w: %w", ErrBadEndpoint, err)
	}
	signer, err := NewSigner(ep.Secrets...)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadEndpoint, err)
	}
	body, err := msg.Payload()
	if err != nil {
		return err
	}
	ep.Secrets = slices.Clone(ep.Secrets)
	dl := &delivery{ep: ep, key: ep.key(), name: ep.name(), msg: msg, payload: body, signer: signer, manual: manual}
	pk := pendingKey{dl.key, msg.ID}

	d.mu.Lock()
	defer d.mu.Unlock()
	goneAt, disabled := d.disabled[dl.key]
	switch {
	case d.closed:
		return ErrClosed
	case disabled:
		return fmt.Errorf("%w: %s answered 410 Gone at %s; enable it to deliver again", ErrEndpointDisabled, dl.key, goneAt.Format(time.RFC3339))
	case d.pending[pk] != nil:
		return fmt.Errorf("%w: %s", ErrAlreadyPending, msg.ID)
	case len(d.pending) >= d.cfg.MaxPending:
		return fmt.Errorf("%w: %d messages pending", ErrQueueFull, len(d.pending))
	}
	d.pending[pk] = dl
	d.wg.Add(1)
	go d.run(pk, dl)
	d.log.DebugContext(ctx, "webhook enqueued", "msg_id", msg.ID, "type", msg.Type, "endpoint", dl.name, "manual", manual)
	return nil
}

// result is what one HTTP attempt came to.
type result struct {
	status     int
	latency    time.Duration
	err        string
	retryAfter time.Duration // scaled; 0 when absent
	blocked    bool
	shutdown   bool // the attempt was cut short by Close and does not count
}

func (d *Dispatcher) run(pk pendingKey, dl *delivery) {
	defer d.wg.Done()
	delay := d.cfg.Schedule[0]
	for n := 1; ; n++ {
		if delay > 0 {
			select {
			case <-d.cfg.Clock.After(delay):
			case <-d.waitCtx.Done():
				return // stays pending; Close reports it
			}
		}
		select {
		case d.sem <- struct{}{}:
		case <-d.waitCtx.Done():
			return
		}
		d.mu.Lock()
		_, disabled := d.disabled[dl.key]
		d.mu.Unlock()
		a := Attempt{MessageID: dl.msg.ID, EventType: dl.msg.Type, Number: n, URL: dl.ep.URL, Manual: dl.manual}
		var res result
		if disabled {
			a.At = d.cfg.Clock.Now()
			res.err = "not sent: the endpoint was disabled after answering 410 Gone"
		} else {
			res = d.send(dl, &a)
		}
		<-d.sem
		if res.shutdown {
			return
		}
		a.StatusCode, a.Latency, a.Error = res.status, res.latency, res.err
		last := dl.manual || n >= len(d.cfg.Schedule)
		switch {
		case disabled:
			a.Outcome, a.Final = OutcomeDisabled, true
		case res.status >= 200 && res.status < 300:
			a.Outcome, a.Final = OutcomeDelivered, true
		case res.status == http.StatusGone:
			a.Outcome, a.Final = OutcomeDisabled, true
			a.Error = "410 Gone: the endpoint is disabled and gets no more deliveries until it is enabled again"
			d.mu.Lock()
			d.disabled[dl.key] = a.At
			d.mu.Unlock()
			d.log.Warn("webhook endpoint disabled by 410 Gone", "endpoint", dl.name, "msg_id", dl.msg.ID)
		case res.blocked || last:
			// A blocked address is a configuration problem that retries
			// cannot fix.
			a.Outcome, a.Final = OutcomeFailed, true
		default:
			a.Outcome = OutcomeRetrying
			delay = d.nextDelay(n, res.retryAfter)
			a.NextAttemptAt = a.At.Add(delay)
		}
		d.mu.Lock()
		dl.attempts, dl.nextAt, dl.lastErr = n, a.NextAttemptAt, a.Error
		if a.Final {
			delete(d.pending, pk)
		}
		d.mu.Unlock()
		d.record(dl, a)
		if a.Final {
			return
		}
	}
}

func (d *Dispatcher) record(dl *delivery, a Attempt) {
	level := slog.LevelDebug
	switch a.Outcome {
	case OutcomeRetrying:
		level = slog.LevelInfo
	case OutcomeFailed, OutcomeDisabled:
		level = slog.LevelWarn
	}
	d.log.Log(d.sendCtx, level, "webhook attempt", "msg_id", a.MessageID, "type", a.EventType, "endpoint", dl.name,
		"attempt", a.Number, "status", a.StatusCode, "latency", a.Latency, "outcome", a.Outcome, "error", a.Error)
	// Recording should not be cut short by Close, which waits for it.
	if err := d.cfg.Log.Record(context.WithoutCancel(d.sendCtx), dl.key, a); err != nil {
		d.log.Error("record webhook attempt", "msg_id", a.MessageID, "endpoint", dl.name, "err", err)
	}
}

// nextDelay is the wait after failed attempt n: the schedule's next step,
// scaled and jittered, or the receiver's Retry-After when that is longer.
func (d *Dispatcher) nextDelay(n int, retryAfter time.Duration) time.Duration {
	delay := d.scale(d.cfg.Schedule[n])
	if f := d.cfg.JitterFraction; f > 0 && delay > 0 {
		d.randMu.Lock()
		u := d.cfg.Rand.Float64()
		d.randMu.Unlock()
		delay = time.Duration(float64(delay) * (1 + f*(2*u-1)))
	}
	return max(delay, retryAfter)
}

func (d *Dispatcher) scale(t time.Duration) time.Duration {
	return time.Duration(float64(t) * d.cfg.TimeScale)
}

// send makes one attempt. The signature is computed afresh with a fresh
// timestamp; the id and the body are those of every other attempt.
func (d *Dispatcher) send(dl *delivery, a *Attempt) result {
	a.At = d.cfg.Clock.Now()
	sig, err := dl.signer.Sign(dl.msg.ID, a.At, dl.payload)
	if err != nil {
		return result{err: err.Error()}
	}
	timeout := max(d.scale(d.cfg.AttemptTimeout), d.cfg.MinAttemptTimeout)
	ctx, cancel := context.WithTimeout(d.sendCtx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, dl.ep.URL, bytes.NewReader(dl.payload))
	if err != nil {
		return result{err: fmt.Sprintf("cannot build the request: %v", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", d.cfg.UserAgent)
	// Set directly so the names go out as Standard Webhooks spells them
	// over HTTP/1.1 (HTTP/2 lower-cases all names anyway).
	req.Header[HeaderID] = []string{dl.msg.ID}
	req.Header[HeaderTimestamp] = []string{strconv.FormatInt(a.At.Unix(), 10)}
	req.Header[HeaderSignature] = []string{sig}

	start := time.Now()
	resp, err := d.client.Do(req)
	lat := time.Since(start)
	if err != nil {
		if d.sendCtx.Err() != nil {
			return result{shutdown: true}
		}
		return result{latency: lat, err: describe(err, timeout), blocked: errors.Is(err, safedial.ErrBlockedAddress)}
	}
	// Drain a little so the connection can be reused; receivers should
	// answer with an empty or short body.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	res := result{status: resp.StatusCode, latency: lat}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		res.err = "receiver answered " + resp.Status
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			res.err += fmt.Sprintf(" (Location: %q); redirects are not followed, register the final URL", resp.Header.Get("Location"))
		}
		if ra, ok := parseRetryAfter(resp.Header.Get("Retry-After"), a.At); ok {
			res.retryAfter = d.scale(min(ra, d.cfg.MaxRetryAfter))
		}
	}
	return res
}

func describe(err error, timeout time.Duration) string {
	var ne net.Error
	switch {
	case errors.Is(err, safedial.ErrBlockedAddress):
		return "refused to connect: " + unwrapURL(err).Error()
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("no response within %s", timeout)
	default:
		return unwrapURL(err).Error()
	}
}

// unwrapURL drops the "Post \"https://…\":" prefix; the attempt has the URL.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// parseRetryAfter reads delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(min(secs, int64(365*24*time.Hour/time.Second))) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// Pending returns how many messages are accepted and not yet final.
func (d *Dispatcher) Pending() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.pending)
}

// Close stops accepting messages and waiting for retries, lets attempts in
// flight finish until ctx ends (then cuts them short; those do not count as
// attempts), and returns the messages that are neither delivered, failed
// nor disabled, soonest due first, for the caller to persist or log. The
// error is ctx's when it ended first.
func (d *Dispatcher) Close(ctx context.Context) ([]Pending, error) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, ErrClosed
	}
	d.closed = true
	d.mu.Unlock()

	d.cancelWait()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("close webhook dispatcher: %w", ctx.Err())
		d.cancelSend()
		<-done
	}
	d.cancelSend()

	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Pending, 0, len(d.pending))
	for _, dl := range d.pending {
		out = append(out, Pending{Endpoint: dl.ep, Message: dl.msg, Payload: dl.payload,
			Attempts: dl.attempts, NextAttemptAt: dl.nextAt, LastError: dl.lastErr})
	}
	slices.SortFunc(out, func(a, b Pending) int {
		return cmp.Or(a.NextAttemptAt.Compare(b.NextAttemptAt), cmp.Compare(a.Message.ID, b.Message.ID))
	})
	if len(out) > 0 {
		d.log.Warn("webhook dispatcher closed with pending messages", "pending", len(out))
	}
	return out, err
}
