package webhooks

import (
	"crypto/hmac"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultTolerance is how far a webhook-timestamp may be from the
// receiver's clock, in either direction, before Verify rejects it.
const DefaultTolerance = 5 * time.Minute

// Verification failures, wrapped by Verify's error.
var (
	ErrMissingHeaders      = errors.New("missing webhook headers")
	ErrInvalidTimestamp    = errors.New("invalid webhook-timestamp")
	ErrMessageTooOld       = errors.New("webhook timestamp too old")
	ErrMessageTooNew       = errors.New("webhook timestamp too new")
	ErrNoMatchingSignature = errors.New("no matching webhook signature")
)

// VerifyStep is one line of a VerifyReport, written for a person.
type VerifyStep struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// ReceivedSignature is one entry of the webhook-signature header.
type ReceivedSignature struct {
	Raw     string `json:"raw"`     // as received, e.g. "v1,K5oZ…="
	Version string `json:"version"` // "v1"; other versions are not checked
	Matched bool   `json:"matched"`
}

// VerifyReport says what Verify checked and found, so that the inbox and
// the try-it page can show each step rather than a bare yes or no.
type VerifyReport struct {
	Valid     bool          `json:"valid"`
	Steps     []VerifyStep  `json:"steps"`
	ID        string        `json:"id"`
	Timestamp time.Time     `json:"timestamp,omitzero"`
	Skew      time.Duration `json:"skew"`      // now minus Timestamp
	Tolerance time.Duration `json:"tolerance"` // the tolerance applied
	// SignedContent is what was signed, "{id}.{timestamp}.{body}", cut to
	// 200 bytes for display.
	SignedContent string              `json:"signed_content"`
	Expected      string              `json:"expected"` // "v1,<base64>" computed from the secret
	Received      []ReceivedSignature `json:"received"`
	MatchedIndex  int                 `json:"matched_index"` // index into Received, -1 when none matched
}

// Verify checks a delivery the way a receiver should: all three headers
// present, webhook-timestamp within tolerance of now (DefaultTolerance when
// tolerance is 0), and one of the v1 signatures equal, in constant time, to
// the HMAC of "{id}.{timestamp}.{body}" under secret. It runs every step it
// can even after one fails, so the report is complete; the error wraps the
// first failure's sentinel (or ErrBadSecret).
func Verify(secret string, headers http.Header, body []byte, now time.Time, tolerance time.Duration) (VerifyReport, error) {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	r := VerifyReport{Tolerance: tolerance, MatchedIndex: -1}
	var first error
	fail := func(err error) {
		if first == nil {
			first = err
		}
	}
	step := func(name string, ok bool, format string, args ...any) {
		r.Steps = append(r.Steps, VerifyStep{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)})
	}

	id, ts, sig := headers.Get(HeaderID), headers.Get(HeaderTimestamp), headers.Get(HeaderSignature)
	r.ID = id
	var missing []string
	for _, h := range [...][2]string{{HeaderID, id}, {HeaderTimestamp, ts}, {HeaderSignature, sig}} {
		if h[1] == "" {
			missing = append(missing, h[0])
		}
	}
	if len(missing) > 0 {
		step("headers", false, "missing: %s", strings.Join(missing, ", "))
		fail(fmt.Errorf("%w: %s", ErrMissingHeaders, strings.Join(missing, ", ")))
	} else {
		step("headers", true, "%s, %s and %s are present", HeaderID, HeaderTimestamp, HeaderSignature)
	}

	tsOK := false
	if ts != "" {
		secs, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			step("timestamp", false, "%s %q is not whole unix seconds", HeaderTimestamp, ts)
			fail(fmt.Errorf("%w: %q", ErrInvalidTimestamp, ts))
		} else {
			tsOK = true
			r.Timestamp = time.Unix(secs, 0).UTC()
			r.Skew = now.Sub(r.Timestamp).Truncate(time.Second)
			switch {
			case r.Skew > tolerance:
				step("timestamp", false, "%s is %s old; the tolerance is %s (a replayed or long-delayed message)", r.Timestamp.Format(time.RFC3339), r.Skew, tolerance)
				fail(fmt.Errorf("%w: %s old, tolerance %s", ErrMessageTooOld, r.Skew, tolerance))
			case -r.Skew > tolerance:
				step("timestamp", false, "%s is %s in the future; the tolerance is %s (check the clocks)", r.Timestamp.Format(time.RFC3339), -r.Skew, tolerance)
				fail(fmt.Errorf("%w: %s ahead, tolerance %s", ErrMessageTooNew, -r.Skew, tolerance))
			default:
				step("timestamp", true, "%s is within %s of now (off by %s)", r.Timestamp.Format(time.RFC3339), tolerance, r.Skew)
			}
		}
	}

	signer, err := NewSigner(secret)
	if err != nil {
		step("secret", false, "%v", err)
		fail(err)
	}
	if sig != "" {
		for raw := range strings.FieldsSeq(sig) {
			version, _, _ := strings.Cut(raw, ",")
			r.Received = append(r.Received, ReceivedSignature{Raw: raw, Version: version})
		}
	}
	if signer == nil || id == "" || !tsOK {
		if len(r.Received) > 0 || sig != "" {
			step("signature", false, "not checked: the id, timestamp or secret is missing or invalid")
		}
		if first == nil {
			first = ErrNoMatchingSignature
		}
		return r, fmt.Errorf("verify webhook: %w", first)
	}

	signed := fmt.Sprintf("%s.%d.%s", id, r.Timestamp.Unix(), body)
	if len(signed) > 200 {
		signed = signed[:200] + "…"
	}
	r.SignedContent = signed
	r.Expected, err = signer.Sign(id, r.Timestamp, body)
	if err != nil {
		return r, fmt.Errorf("verify webhook: %w", err)
	}
	// Compare every candidate, without stopping at the first match, so the
	// time taken does not depend on which one matched.
	for i := range r.Received {
		eq := hmac.Equal([]byte(r.Received[i].Raw), []byte(r.Expected))
		if eq && r.Received[i].Version == "v1" {
			r.Received[i].Matched = true
			if r.MatchedIndex < 0 {
				r.MatchedIndex = i
			}
		}
	}
	switch {
	case r.MatchedIndex >= 0:
		step("signature", true, "signature %d of %d matches the expected %s", r.MatchedIndex+1, len(r.Received), r.Expected)
	case len(r.Received) == 0:
		step("signature", false, "%s holds no signature", HeaderSignature)
		fail(ErrNoMatchingSignature)
	default:
		step("signature", false, "none of the %d received signatures matches the expected %s: was the body changed (even whitespace), or is this the right secret?", len(r.Received), r.Expected)
		fail(ErrNoMatchingSignature)
	}
	if first != nil {
		return r, fmt.Errorf("verify webhook: %w", first)
	}
	r.Valid = true
	return r, nil
}
