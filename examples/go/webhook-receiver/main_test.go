package main

import (
	"strings"
	"testing"
	"time"
)

// The known-answer vector of Standard Webhooks (and of ASYNC-CONFORMANCE.md R25).
const (
	kaSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	kaID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	kaTimestamp = "1614265330"
	kaBody      = `{"test": 2432232314}`
	kaSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestVerify(t *testing.T) {
	at := time.Unix(1614265330, 0)
	tests := []struct {
		name, id, timestamp, signatures, body string
		now                                   time.Time
		wantErr                               string
	}{
		{"known answer", kaID, kaTimestamp, kaSignature, kaBody, at, ""},
		{"one of several signatures", kaID, kaTimestamp, "v1,bm90IGl0 " + kaSignature, kaBody, at, ""},
		{"4 minutes late", kaID, kaTimestamp, kaSignature, kaBody, at.Add(4 * time.Minute), ""},
		{"6 minutes late", kaID, kaTimestamp, kaSignature, kaBody, at.Add(6 * time.Minute), "off our clock"},
		{"6 minutes early", kaID, kaTimestamp, kaSignature, kaBody, at.Add(-6 * time.Minute), "off our clock"},
		{"body changed", kaID, kaTimestamp, kaSignature, `{"test": 2432232315}`, at, "no signature matches"},
		{"id changed", "msg_other", kaTimestamp, kaSignature, kaBody, at, "no signature matches"},
		{"other version", kaID, kaTimestamp, "v2," + strings.TrimPrefix(kaSignature, "v1,"), kaBody, at, "no signature matches"},
		{"no signature", kaID, kaTimestamp, "", kaBody, at, "missing"},
		{"timestamp not a number", kaID, "yesterday", kaSignature, kaBody, at, "Unix seconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verify(kaSecret, tt.id, tt.timestamp, tt.signatures, []byte(tt.body), tt.now)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("verify: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("verify: %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
