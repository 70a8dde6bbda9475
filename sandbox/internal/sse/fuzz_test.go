package sse

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// FuzzLastEventID feeds Last-Event-ID headers and last_event_id query
// strings. An id accepted is a non-negative int64 written in decimal; a
// refusal wraps ErrBadLastEventID and never echoes more than a bounded
// amount of the input.
func FuzzLastEventID(f *testing.F) {
	for _, s := range [][2]string{{"7", ""}, {"", "last_event_id=12"}, {"007", ""}, {"-1", ""}, {"9223372036854775807", ""}, {"9223372036854775808", ""}, {" 1", ""}, {"", "last_event_id=%ZZ"}, {"", "last_event_id=1&last_event_id=2"}, {strings.Repeat("9", 40), ""}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, header, rawQuery string) {
		r := &http.Request{Header: http.Header{}, URL: &url.URL{RawQuery: rawQuery}}
		if header != "" {
			r.Header.Set("Last-Event-ID", header)
		}
		seq, ok, err := LastEventID(r)
		if err != nil {
			if !errors.Is(err, ErrBadLastEventID) || ok {
				t.Fatalf("LastEventID: ok=%v err=%v", ok, err)
			}
			if len(err.Error()) > 200 {
				t.Fatalf("error echoes too much input (%d bytes): %.80q…", len(err.Error()), err)
			}
			return
		}
		v := r.Header.Get("Last-Event-ID")
		if v == "" {
			v = r.URL.Query().Get("last_event_id")
		}
		if !ok {
			if v != "" || seq != 0 {
				t.Fatalf("not ok but value %q, seq %d", v, seq)
			}
			return
		}
		if n, err := strconv.ParseInt(v, 10, 64); err != nil || n != seq || seq < 0 {
			t.Fatalf("%q read as %d", v, seq)
		}
	})
}
