package idempotency

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/dunglas/httpsfv"
)

// FuzzParseKeyHeader feeds Idempotency-Key values as a client could send
// them. A key accepted is 1 to 255 printable ASCII characters; a bare key
// comes back as sent (trimmed); a quoted one is its Structured Field String;
// anything refused wraps ErrKeyInvalid.
func FuzzParseKeyHeader(f *testing.F) {
	for _, s := range []string{"4f0b6a4e-8d1c-4d8e-9b8a-2f3c5d6e7f80", `"quoted key"`, `"esc\"aped\\"`, `"unterminated`, "", " ", "tab\tkey", "ключ", strings.Repeat("k", 256), `"a";p=1`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		key, err := ParseKeyHeader(value)
		if err != nil {
			if !errors.Is(err, ErrKeyInvalid) {
				t.Fatalf("ParseKeyHeader(%q): %v does not wrap ErrKeyInvalid", value, err)
			}
			return
		}
		if ValidateKey(key) != nil {
			t.Fatalf("ParseKeyHeader(%q) = %q, which ValidateKey refuses", value, key)
		}
		if trimmed := strings.TrimSpace(value); !strings.HasPrefix(trimmed, `"`) && key != trimmed {
			t.Fatalf("bare key %q came back as %q", value, key)
		}
		// What a client that quotes gets back is the same key.
		quoted, err := httpsfv.Marshal(httpsfv.NewItem(key))
		if err != nil {
			t.Fatalf("key %q is not a Structured Field String: %v", key, err)
		}
		if again, err := ParseKeyHeader(quoted); err != nil || again != key {
			t.Fatalf("quoted %q parsed as %q, %v; want %q", quoted, again, err, key)
		}
	})
}

// FuzzFingerprint feeds request bodies to the canonicaliser behind
// Fingerprint: it must not panic, and a JSON body re-indented (as a proxy or
// a person with curl might) must keep its fingerprint.
func FuzzFingerprint(f *testing.F) {
	for _, s := range []string{`{"from":"2026-01-01","to":"2026-01-31"}`, `{"b":1,"a":[1,2,{"z":null}]}`, `[1.0, 1e3, "\u00e9"]`, `{"a":1,"a":2}`, `not json`, ``, `{"deep":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fp := Fingerprint("POST", "/v1/reports", body)
		if fp != Fingerprint("post", "/v1/reports", body) {
			t.Fatal("fingerprint depends on the method's case")
		}
		if !json.Valid(body) {
			return
		}
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, body, "", "  "); err != nil {
			return
		}
		if Fingerprint("POST", "/v1/reports", pretty.Bytes()) != fp {
			t.Fatalf("re-indented body changed the fingerprint:\n%s\n%s", body, pretty.Bytes())
		}
	})
}
