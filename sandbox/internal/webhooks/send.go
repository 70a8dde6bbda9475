package webhooks

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/safedial"
)

// Errors of whoever delivers messages (the sandbox's outbox); the API
// turns them into problems.
var (
	// ErrQueueFull: no more messages may be pending (the reason a message
	// was stored unsent).
	ErrQueueFull = errors.New("webhook queue full")
	// ErrAlreadyPending refuses a redelivery while an attempt is due.
	ErrAlreadyPending = errors.New("webhook message already pending for this endpoint")
	// ErrClosed: delivery has stopped. Nothing returns it since deliveries
	// moved to the database's outbox; api/problems.go still maps it.
	ErrClosed = errors.New("webhook delivery stopped")
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

// Attempt is one try at delivering a message, or the decision not to try
// (an endpoint disabled meanwhile): a line of the delivery log a developer
// reads when their webhooks "never arrived".
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

// Sender makes delivery attempts, one per Send: it signs the payload for
// that attempt, POSTs it, never follows a redirect, and says what came of
// it. Deciding when to try again belongs to the caller. It is safe for
// concurrent use.
type Sender struct {
	client    http.Client
	userAgent string
}

// NewSender sends with a copy of client whose redirects are never followed,
// whatever client.CheckRedirect says. Build client with safedial so that
// addresses are checked when connecting. userAgent is
// "Accepted-Webhooks/1" when empty.
func NewSender(client *http.Client, userAgent string) *Sender {
	s := &Sender{client: *client, userAgent: cmp.Or(userAgent, "Accepted-Webhooks/1")}
	s.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return s
}

// Request is one attempt to make.
type Request struct {
	URL     string
	ID      string    // the message id, the same on every attempt
	At      time.Time // this attempt's webhook-timestamp, new on every attempt
	Payload []byte    // the exact bytes to sign and send
	Signer  *Signer
	// Timeout bounds the attempt, from dialling to the response headers.
	Timeout time.Duration
}

// Result is what one attempt came to.
type Result struct {
	Status  int // 0 when no response arrived
	Latency time.Duration
	Err     string // why it failed, for a person; "" for a 2xx
	// RetryAfter is the receiver's Retry-After (seconds or HTTP-date,
	// from At), as sent: 0 when absent or on a 2xx.
	RetryAfter time.Duration
	// Blocked: safedial refused the address. Retrying cannot fix a
	// callback that points into a private network.
	Blocked bool
	// Canceled: ctx ended before an answer (the sender is stopping). It
	// is not an attempt and is not to be recorded.
	Canceled bool
}

// Delivered reports a 2xx.
func (r Result) Delivered() bool { return r.Status >= 200 && r.Status <= 299 }

// Send makes one attempt. The signature is computed afresh for r.At; the id
// and the body are those of every other attempt.
func (s *Sender) Send(ctx context.Context, r Request) Result {
	sig, err := r.Signer.Sign(r.ID, r.At, r.Payload)
	if err != nil {
		return Result{Err: err.Error()}
	}
	actx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, r.URL, bytes.NewReader(r.Payload))
	if err != nil {
		return Result{Err: fmt.Sprintf("cannot build the request: %v", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", s.userAgent)
	// Set directly so the names go out as Standard Webhooks spells them
	// over HTTP/1.1 (HTTP/2 lower-cases all names anyway).
	req.Header[HeaderID] = []string{r.ID}
	req.Header[HeaderTimestamp] = []string{strconv.FormatInt(r.At.Unix(), 10)}
	req.Header[HeaderSignature] = []string{sig}

	start := time.Now()
	resp, err := s.client.Do(req)
	lat := time.Since(start)
	if err != nil {
		if ctx.Err() != nil {
			return Result{Canceled: true}
		}
		return Result{Latency: lat, Err: describe(err, r.Timeout), Blocked: errors.Is(err, safedial.ErrBlockedAddress)}
	}
	// Drain a little so the connection can be reused; receivers should
	// answer with an empty or short body.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	res := Result{Status: resp.StatusCode, Latency: lat}
	if !res.Delivered() {
		res.Err = "receiver answered " + resp.Status
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			res.Err += fmt.Sprintf(" (Location: %q); redirects are not followed, register the final URL", resp.Header.Get("Location"))
		}
		if ra, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), r.At); ok {
			res.RetryAfter = ra
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

// ParseRetryAfter reads delay-seconds or an HTTP-date (RFC 9110 §10.2.3),
// the date counted from now.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
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
