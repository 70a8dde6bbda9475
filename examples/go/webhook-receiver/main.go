// Command webhook-receiver receives the Accepted sandbox's webhooks (an
// import's import.complete, import.partial or import.failed): it verifies
// each Standard Webhooks signature by hand, drops deliveries it has already
// stored, and answers 2xx only once the event is safely on disk.
//
// It needs only the Go standard library:
//
//	go run ./examples/go/webhook-receiver
//
// then start an import with "callback_url" set to the URL it prints (the
// sandbox must be able to reach it: on your own machine, run the sandbox
// with -allow-private-callbacks).
//
// Environment:
//
//	ACCEPTED_URL             the sandbox (default http://localhost:8080)
//	ACCEPTED_KEY             your API key; its signing secret is read from GET /v1/webhooks/secret.
//	                         When empty, a new sandbox key is made and printed.
//	ACCEPTED_WEBHOOK_SECRET  the signing secret (whsec_…); when set, the sandbox is not asked
//	ACCEPTED_LISTEN          where to listen (default 127.0.0.1:8081; port 0 picks a free one)
//	ACCEPTED_EVENTS_FILE     the JSON Lines file events are stored in (default webhook-events.jsonl)
package main

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// tolerance is how far a webhook's timestamp may be from our clock. It
// bounds how long a captured delivery can be replayed.
const tolerance = 5 * time.Minute

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	secret := os.Getenv("ACCEPTED_WEBHOOK_SECRET")
	if secret == "" {
		var err error
		if secret, err = fetchSecret(ctx, env("ACCEPTED_URL", "http://localhost:8080"), os.Getenv("ACCEPTED_KEY")); err != nil {
			return fmt.Errorf("getting the signing secret: %w", err)
		}
	}
	store, err := openStore(env("ACCEPTED_EVENTS_FILE", "webhook-events.jsonl"))
	if err != nil {
		return err
	}
	defer store.file.Close()

	ln, err := net.Listen("tcp", env("ACCEPTED_LISTEN", "127.0.0.1:8081"))
	if err != nil {
		return err
	}
	fmt.Printf("listening on http://%s/webhooks\n", ln.Addr())
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks", &receiver{secret: secret, store: store})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, done := context.WithTimeout(context.Background(), 5*time.Second)
		defer done()
		// Lets deliveries being stored finish.
		if err := srv.Shutdown(shutdown); err != nil {
			log.Printf("shutting down: %v", err)
		}
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// receiver handles POST /webhooks.
type receiver struct {
	secret string
	store  *store
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The signature covers the exact bytes sent: read them once, verify,
	// and only then parse.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, "body too large or unreadable", http.StatusBadRequest)
		return
	}
	id := r.Header.Get("webhook-id")
	if err := verify(rc.secret, id, r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"), body, time.Now()); err != nil {
		fmt.Printf("rejected %s: %v\n", id, err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var event struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &event); err != nil {
		http.Error(w, "body is not JSON", http.StatusBadRequest)
		return
	}
	stored, err := rc.store.add(id, body)
	switch {
	case err != nil: // not stored: a 5xx makes the sender try again later
		fmt.Printf("could not store %s: %v\n", id, err)
		http.Error(w, "could not store the event", http.StatusInternalServerError)
	case !stored:
		fmt.Printf("duplicate %s (%s): already stored, dropped\n", id, event.Type)
		w.WriteHeader(http.StatusOK) // a 2xx, so the sender stops retrying
	default:
		fmt.Printf("stored %s (%s)\n", id, event.Type)
		w.WriteHeader(http.StatusOK)
	}
}

// region verify
// verify checks a Standard Webhooks signature: HMAC-SHA256, keyed with the
// base64-decoded part of the secret after "whsec_", over
// "{id}.{timestamp}.{body}". The header may hold several space-separated
// signatures (one per secret during a rotation); any one "v1," match will do.
func verify(secret, id, timestamp, signatures string, body []byte, now time.Time) error {
	if id == "" || timestamp == "" || signatures == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("webhook-timestamp is not Unix seconds")
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("webhook-timestamp is %s off our clock: a replay, or a clock to fix", d.Round(time.Second))
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return errors.New("the secret is not whsec_ and base64")
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.", id, timestamp)
	mac.Write(body)
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(signatures) {
		version, value, _ := strings.Cut(sig, ",")
		got, err := base64.StdEncoding.DecodeString(value)
		if version == "v1" && err == nil && hmac.Equal(got, want) { // constant time
			return nil
		}
	}
	return errors.New("no signature matches")
}

// endregion verify

// region dedupe
// store appends each event to a JSON Lines file and remembers the ids it
// holds. Senders retry until they see a 2xx, and a redelivery reuses the
// id, so the same event can arrive twice: the id is the key. The lock spans
// check, write and sync, so two copies arriving at once are stored once.
type store struct {
	mu   sync.Mutex
	file *os.File
	seen map[string]bool
}

// add stores the event unless its id is already stored; it returns once
// the line is on disk, so a 2xx after it never loses an event.
func (s *store) add(id string, payload []byte) (stored bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen[id] {
		return false, nil
	}
	line, err := json.Marshal(storedEvent{ID: id, ReceivedAt: time.Now().UTC(), Event: payload})
	if err != nil {
		return false, err
	}
	if _, err := s.file.Write(append(line, '\n')); err != nil {
		return false, err
	}
	if err := s.file.Sync(); err != nil {
		return false, err
	}
	s.seen[id] = true
	return true, nil
}

// endregion dedupe

// storedEvent is one line of the events file.
type storedEvent struct {
	ID         string          `json:"webhook_id"`
	ReceivedAt time.Time       `json:"received_at"`
	Event      json.RawMessage `json:"event"`
}

// openStore opens the events file for appending and reads the ids already
// in it, so a restart does not forget what was handled.
func openStore(path string) (*store, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	s := &store{file: f, seen: map[string]bool{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev storedEvent
		if json.Unmarshal(sc.Bytes(), &ev) == nil {
			s.seen[ev.ID] = true
		}
	}
	return s, sc.Err()
}

// fetchSecret reads the signing secret of key's webhooks from the sandbox,
// making a sandbox key first when there is none.
func fetchSecret(ctx context.Context, base, key string) (string, error) {
	if key == "" {
		var k struct{ Key string }
		if err := call(ctx, http.MethodPost, base+"/v1/sandbox/keys", "", http.StatusCreated, &k); err != nil {
			return "", err
		}
		key = k.Key
		fmt.Fprintf(os.Stderr, "using a new sandbox key %s: start imports with it (set ACCEPTED_KEY to reuse it)\n", key)
	}
	var s struct{ Secret string }
	err := call(ctx, http.MethodGet, base+"/v1/webhooks/secret", key, http.StatusOK, &s)
	return s.Secret, err
}

func call(ctx context.Context, method, url, key string, want int, v any) error {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != want {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return fmt.Errorf("%s %s: %s %s", method, url, res.Status, msg)
	}
	return json.NewDecoder(res.Body).Decode(v)
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
