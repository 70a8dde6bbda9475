// Package webhooks delivers signed event notifications following Standard
// Webhooks 1.0: a {type, timestamp, data} JSON payload, the webhook-id,
// webhook-timestamp and webhook-signature headers, and a retry schedule
// with jitter that honours Retry-After.
//
// It is a library: it knows nothing of HTTP handlers, imports, API keys or
// databases. The sandbox's outbox stores messages and decides when to try
// again; each try is one Sender.Send, recorded as an Attempt. Verify
// explains a signature check to a person (the built-in inbox and the try-it
// page).
package webhooks

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// PayloadLimit bounds the size of a payload: a payload must be strictly
// smaller than this many bytes (Standard Webhooks asks for under 20 kB).
const PayloadLimit = 20_000

var (
	// ErrInvalidMessage is wrapped when a Message lacks an id or has an event
	// type that is not dotted lower-case words.
	ErrInvalidMessage = errors.New("invalid webhook message")
	// ErrPayloadTooLarge is wrapped when the JSON payload reaches PayloadLimit.
	ErrPayloadTooLarge = errors.New("webhook payload too large")
)

// Message is one event to deliver. The same ID is sent on every attempt and
// on manual redeliveries, so receivers can drop duplicates.
type Message struct {
	ID        string    // "msg_" + random, see NewMessageID
	Type      string    // dotted, e.g. "import.complete"
	Timestamp time.Time // when the event happened
	Data      any       // marshalled with encoding/json
}

// NewMessageID returns "msg_" followed by 26 random base32 characters (130
// bits).
func NewMessageID() string { return "msg_" + rand.Text() }

// NewMessage returns a Message with a fresh id.
func NewMessage(eventType string, at time.Time, data any) Message {
	return Message{ID: NewMessageID(), Type: eventType, Timestamp: at, Data: data}
}

// eventTypeRE is kept inside a function so the package holds no mutable
// state; compiling it costs about a microsecond per payload.
func eventTypeRE() *regexp.Regexp {
	return regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$`)
}

// payload is the wire shape; field order is the order of the JSON keys.
type payload struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	Data      any    `json:"data"`
}

// Payload validates m and returns its JSON payload,
// {"type":…,"timestamp":RFC 3339 in UTC,"data":…}. It is computed once per
// message: every attempt sends (and signs) the same bytes.
func (m Message) Payload() ([]byte, error) {
	if m.ID == "" {
		return nil, fmt.Errorf("%w: the message has no id", ErrInvalidMessage)
	}
	if len(m.Type) > 128 || !eventTypeRE().MatchString(m.Type) {
		return nil, fmt.Errorf("%w: event type %q must be dotted lower-case words such as \"import.complete\"", ErrInvalidMessage, m.Type)
	}
	if m.Timestamp.IsZero() {
		return nil, fmt.Errorf("%w: message %s has no timestamp", ErrInvalidMessage, m.ID)
	}
	b, err := json.Marshal(payload{
		Type:      m.Type,
		Timestamp: m.Timestamp.UTC().Format(time.RFC3339Nano),
		Data:      m.Data,
	})
	if err != nil {
		return nil, fmt.Errorf("marshal webhook %s (%s): %w", m.ID, m.Type, err)
	}
	if len(b) >= PayloadLimit {
		return nil, fmt.Errorf("%w: %s payload is %d bytes; it must be under %d (send a link to the data instead)",
			ErrPayloadTooLarge, m.Type, len(b), PayloadLimit)
	}
	return b, nil
}
